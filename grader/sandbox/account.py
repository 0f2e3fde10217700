"""The probe's user: its account, a uid per grading process, whether it can run the interpreter, and its processes.

What the user can run and read is asked of a child that became that user (`runnable`): a path in a folder closed to
it does not exist for it, and must count as unreadable, not as absent.
"""

import errno
import functools
import os
import pwd
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from grader.sandbox.kernel import in_child

DEFAULT_PROBE_USER = "lesson6-probe"


# Uids WORKER_UID_BASE + pid: no account needed (setuid takes any number), unique among live processes, and above
# every range that useradd (< 60,000), subordinate-uid files (100,000 + 65,536 n) or systemd (< 0x70000000) hand out.
WORKER_UID_BASE = 2_000_000_000
FALLBACK_PROBE_USER = "nobody"
NO_SUCH_USER = "Expected an existing probe user; received probe_user={name!r}, which this machine does not know"
ROOT_PROBE_USER = "Expected an unprivileged probe user; received probe_user={name!r} with uid 0"
USERADD_FAILED = "Could not create the probe user {name!r}: useradd exited with status {code}: {message}"


def probe_account(name: str | None = None) -> pwd.struct_passwd:
    """Return the probe's account: `name`, else the dedicated account if it exists, else nobody."""
    if name is None:
        try:
            return pwd.getpwnam(DEFAULT_PROBE_USER)
        except KeyError:
            name = FALLBACK_PROBE_USER
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        raise ValueError(NO_SUCH_USER.format(name=name)) from None
    if account.pw_uid == 0:
        raise ValueError(ROOT_PROBE_USER.format(name=name))
    return account


def ensure_probe_user(name: str = DEFAULT_PROBE_USER) -> int:
    """Create the probe's system account unless it exists (needs root); return its uid."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        pass
    done = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                           "--shell", "/usr/sbin/nologin", name], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(USERADD_FAILED.format(name=name, code=done.returncode, message=done.stderr.strip()))
    return pwd.getpwnam(name).pw_uid


def worker_uid(pid: int | None = None) -> int:
    """Return the probe uid of the process pid (default this one): WORKER_UID_BASE + pid."""
    return WORKER_UID_BASE + (os.getpid() if pid is None else pid)


def interpreter_paths(python: Path | str) -> list[Path]:
    """Return the paths a probe may run python by: as given (a venv's reads its pyvenv.cfg), then its real file."""
    given, real = Path(os.path.abspath(python)), Path(os.path.realpath(python))
    return [given] + ([real] if real != given else [])


def interpreter_needs(python: Path) -> list[Path]:
    """Return what running python by this path reads: its venv (pyvenv.cfg) if it is a venv's, and its installation."""
    venv = python.parent.parent
    return [*([venv] if (venv / "pyvenv.cfg").is_file() else []), Path(os.path.realpath(python)).parents[1]]


@functools.lru_cache(maxsize=64)
def runnable(uid: int, gid: int, pythons: tuple[Path, ...], paths: tuple[Path, ...]) -> tuple[Path | None, str]:
    """Return (the first of pythons uid can run, with everything it and the probe read, "") or (None, why not).

    Existence is judged by the grader, access by a child that became uid: a path in a folder closed to that user
    does not exist for it, and must count as unreadable, not as absent.
    """
    wanted = [(python, [str(path) for path in [*interpreter_needs(python), *paths] if os.path.exists(path)])
              for python in pythons]
    folders = {path for _python, needs in wanted for path in needs if os.path.isdir(path)}

    def check():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        reasons = []
        for python, needs in wanted:
            if not os.access(python, os.X_OK):
                reasons.append(f"it cannot run the interpreter {python}")
                continue
            unreadable = [path for path in needs if not os.access(path, os.R_OK | (os.X_OK if path in folders else 0))]
            if not unreadable:
                return {"python": str(python)}
            reasons.append(f"it can run the interpreter {python} but cannot read {unreadable[0]}")
        return {"error": "; ".join(reasons)}

    answer = in_child(check)
    return (Path(answer["python"]), "") if "python" in answer else (None, answer.get("error", ""))


def unreachable(uid: int, gid: int, pythons: Sequence[Path], paths: Sequence[Path]) -> str:
    """Return why uid can run none of pythons with all it reads and paths ("" when it can), asked as that user."""
    return runnable(uid, gid, tuple(pythons), tuple(Path(path) for path in paths))[1]


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give a folder and everything in it to uid:gid, without following symbolic links."""
    os.chown(path, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def processes_of(uid: int) -> list[int]:
    """Return the pids of every live (not zombie) process whose real uid is uid."""
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            pids.append(int(entry))
    return pids


def kill_uid(uid: int) -> None:
    """Kill every process of uid at once: a child becomes uid and calls kill(-1, SIGKILL), which no fork outruns."""
    if uid == 0 or uid == os.getuid():
        raise ValueError(f"Expected the probe's own uid; received uid={uid}, which would kill the grader too")

    def check():
        os.setuid(uid)
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass  # nothing left of that uid
        return {}

    error = in_child(check).get("error")
    if error:
        raise OSError(errno.EPERM, f"could not kill the processes of uid {uid}: {error}")
