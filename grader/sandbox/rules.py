"""The probe's Landlock file rules: read the runtime and what the launcher names, write scratch, never the kit."""

import os
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from grader.sandbox import landlock

KIT_PACKAGES = ("grader", "solutions", "exercises")
KIT_DISTRIBUTION = "lesson6_grader"


# Read (and execute) rights on what any Python program needs; devices one by one, never /dev as a whole
# (a root probe could read the raw disk and with it the kit).
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/sys")
DEVICES_READ = ("/dev/urandom", "/dev/random", "/dev/zero")
DEVICES_READ_WRITE = ("/dev/null", "/dev/full")


def resolved(paths: Iterable[Path | str]) -> list[Path]:
    """Return the real paths of those that exist, each once, in order."""
    result = []
    for path in paths:
        real = Path(os.path.realpath(path))
        if real.exists() and real not in result:
            result.append(real)
    return result


class Cover(NamedTuple):
    """Rules that cover some roots except the blocked paths."""

    whole: list[Path]   # allow these with everything beneath
    listed: list[Path]  # folders that contain a blocked path: list them (Python's import system must), read nothing


def cover(roots: Iterable[Path | str], blocked: Iterable[Path | str]) -> Cover:
    """Return what covers the roots except every blocked path (no whole path contains or lies in one)."""
    blocked = {str(path) for path in resolved(blocked)}
    whole: dict[str, None] = {}   # ordered sets
    listed: dict[str, None] = {}

    def visit(path: str) -> None:
        if path in blocked or path in whole or path in listed:
            return
        inside = path.rstrip("/") + "/"
        if not any(inner.startswith(inside) for inner in blocked):
            whole[path] = None
            return
        listed[path] = None
        for name in sorted(os.listdir(path)):  # allow the siblings of the blocked path one by one
            child = os.path.join(path, name)
            visit(os.path.realpath(child) if os.path.islink(child) else child)

    for root in resolved(roots):
        visit(str(root))

    def covered(path: str) -> bool:
        parent = os.path.dirname(path)
        while parent != path:
            if parent in whole:
                return True
            path, parent = parent, os.path.dirname(parent)
        return False

    return Cover([Path(path) for path in whole if not covered(path)], [Path(path) for path in listed])


def runtime_paths(python: Path | str = sys.executable) -> list[Path]:
    """Return the folders the running interpreter (and `python`) needs to start: prefixes and the stdlib."""
    stdlib = sysconfig.get_paths()
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, stdlib["stdlib"],
                  stdlib["platstdlib"], Path(os.path.realpath(python)).parents[1]]
    return resolved(candidates)


def kit_paths(kit_root: Path | str, site_dirs: Iterable[Path | str] = ()) -> list[Path]:
    """Return the kit's tree and its entries in each site-packages folder: packages, dist-info, editable hooks."""
    paths = [Path(kit_root)]
    for site_dir in resolved(site_dirs):
        for entry in site_dir.iterdir():
            name = entry.name.lower().replace("-", "_")
            if entry.name in KIT_PACKAGES or name.startswith(KIT_DISTRIBUTION) or (
                    name.startswith("__editable__") and KIT_DISTRIBUTION in name):
                paths.append(entry)
    return resolved(paths)


def build_ruleset(abi: int, scratch: Path, readable: Sequence[Path], blocked: Sequence[Path]) -> landlock.Ruleset:
    """Build the probe's Landlock ruleset: read the runtime, read and write scratch, nothing else; no TCP."""
    ruleset = landlock.Ruleset(landlock.fs_rights(abi), landlock.net_rights(abi), landlock.scopes(abi))
    try:
        readable = cover([*SYSTEM_READ, *readable], blocked)
        for path in readable.whole:
            ruleset.allow(str(path), landlock.READ)
        for path in readable.listed:
            ruleset.allow(str(path), landlock.READ_DIR)
        for device in resolved(DEVICES_READ):
            ruleset.allow(str(device), landlock.READ_FILE)
        for device in resolved(DEVICES_READ_WRITE):
            ruleset.allow(str(device), landlock.READ_WRITE_DEVICE | landlock.IOCTL_DEV)
        for path in cover([scratch], blocked).whole:
            ruleset.allow(str(path), ruleset.handled_fs)
    except BaseException:
        ruleset.close()
        raise
    return ruleset
