"""What the probe needs of folders its user may not enter, shown to it alone: the view of a private kit.

A kit cloned into a folder other users may not enter (mode 700: /root, a private home, `mktemp -d`) keeps what the
probe needs there: its venv's interpreter and packages, or pyenv's Python under /root. That folder is never opened
up. Instead the probe's child, still root, enters a mount namespace of its own and covers each closed folder with an
empty tmpfs holding only what the probe needs of it, bound at the same path (read-only, but for scratch): the
interpreter runs by the path it is exec'd by, every path the envelope names stays true, and what else the folder
holds (the kit's source, the instructor's files) is not there at all for the probe.
"""

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from grader.sandbox.kernel import MS_BIND, MS_NODEV, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, mount

# ((closed folder, ((path the probe needs under it, writable), ...)), ...): plain data, hashable, picklable.
View = tuple[tuple[str, tuple[tuple[str, bool], ...]], ...]
COVER_OPTIONS = "mode=0755,size=64k"  # the tmpfs that covers a closed folder holds only the binds' mount points


def closed_folder(path: Path) -> Path | None:
    """Return the outermost folder above path that other users may not enter, None when every one lets them."""
    for folder in reversed(path.parents):  # "/" first
        try:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
        except OSError:
            return None
    return None


def plan_view(paths: Iterable[Path | str], writable: Iterable[Path | str] = ()) -> View:
    """Return the view that shows the probe the paths that lie behind a folder closed to other users (() if none).

    writable: paths among them the probe writes (its scratch folder); the others are bound read-only.
    """
    written = {Path(os.path.abspath(path)) for path in writable}
    wanted = sorted({Path(os.path.abspath(path)) for path in [*paths, *written] if os.path.exists(path)})
    outermost = [path for path in wanted if not any(other in path.parents for other in wanted)]
    found: dict[Path, list[tuple[str, bool]]] = {}
    for path in outermost:
        folder = closed_folder(path)
        if folder is not None:
            found.setdefault(folder, []).append((str(path), path in written))
    return tuple((str(folder), tuple(found[folder])) for folder in sorted(found))


def folders(view: View) -> list[str]:
    """Return the closed folders a view covers."""
    return [folder for folder, _paths in view]


def enter_view(view: View) -> None:
    """Cover each closed folder with a tmpfs that holds binds of what the probe needs of it.

    Call it in the probe's child, as root, once it has a mount namespace of its own (CLONE_NEWNS): what it mounts
    is private to that namespace.
    """
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    for folder, paths in view:
        handles = [(path, writable, os.open(path, os.O_PATH | os.O_CLOEXEC)) for path, writable in paths]
        mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, COVER_OPTIONS)  # from here on the folder looks empty
        for path, writable, handle in handles:
            source = f"/proc/self/fd/{handle}"
            for parent in reversed(Path(path).relative_to(folder).parents[:-1]):
                inside = Path(folder) / parent
                if not inside.exists():
                    inside.mkdir()
                    inside.chmod(0o755)
            if os.path.isdir(source):
                os.mkdir(path)
            else:
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            mount(source, path, None, MS_BIND | MS_REC)
            if not writable:
                mount("none", path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
            os.close(handle)
