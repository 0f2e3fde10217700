"""Isolate every probe process with what the operating system offers, layer by layer, and say which layers held.

`plan()` finds out in the parent, before any probe starts, which layers this machine allows; `Plan.preexec()`
applies them in the child between fork and exec; `Plan.layers` says what held and why not. The layers:

- rlimits         address space, file size, no core dumps, death with the launcher (always held);
- user            when the grader runs as root, the probe runs as an unprivileged user (`lesson6-probe`, made by
                  `ensure_probe_user()`, else `nobody`) that owns only the scratch folder: it can neither write the
                  kit nor signal the grader. It holds only where that user, asked as itself, can run the
                  interpreter (by the path given, else by its real file: `Plan.python`) and read what the probe
                  reads; else the reason names what it cannot run or read and what the instructor can do.
                  A batch worker's probes get a uid of that worker's own instead (`worker_uid()`, in that
                  account's group), so that killing every process of one probe's uid never reaches a probe of
                  another worker;
- capabilities    when the probe stays root after all, it keeps no capability (no mount, module, raw I/O, ptrace);
- no_new_privs    no set-uid program or file capability gives anything back;
- landlock_fs     (Linux >= 5.13) writes only inside scratch; reads only the interpreter, the system folders and
                  what the launcher names, and nothing under a blocked path (the kit's source tree);
- landlock_net    (Landlock ABI >= 4) no TCP bind or connect at all;
- landlock_scope  (Landlock ABI >= 6) no signal and no abstract unix socket to any process outside the probe;
- netns           a network namespace of its own: no interface but a loopback that is down;
- ipc             an IPC namespace of its own: no System V message queue, semaphore or shared-memory segment and
                  no POSIX message queue of another probe or of the machine, and none of its own outlives it (the
                  namespace dies with its last process); where an mqueue file system is mounted (/dev/mqueue), a
                  mount namespace of its own shows its own queues there instead of the machine's;
- cgroup          (cgroup v2, where this process may make a child cgroup) a cgroup of its own per probe: every
                  process the probe starts, however it escapes, is in it, and `cgroup.kill` ends them all at once;
- nproc           at most `max_processes` processes for the probe's uid (RLIMIT_NPROC counts per uid, so only a uid
                  of its own gives it meaning; root is never limited).

Run `python -m grader.sandbox.isolation` to see which layers hold on this machine, and
`python -m grader.sandbox.isolation create-user` (as root, e.g. from setup.sh) to create the probe's account.
"""

import ctypes
import errno
import functools
import json
import os
import pwd
import resource
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from grader.sandbox import landlock

DEFAULT_PROBE_USER = "lesson6-probe"
# Uids WORKER_UID_BASE + pid: no account needed (setuid takes any number), unique among live processes, and above
# every range that useradd (< 60,000), subordinate-uid files (100,000 + 65,536 n) or systemd (< 0x70000000) hand out.
WORKER_UID_BASE = 2_000_000_000
FALLBACK_PROBE_USER = "nobody"
# RLIMIT_NPROC counts threads too: TensorFlow starts two pools of one thread per core, plus a few of its own.
DEFAULT_MAX_PROCESSES = 64 + 2 * (os.cpu_count() or 1)
FILE_SIZE_LIMIT = 256 * 2**20
KIT_PACKAGES = ("grader", "solutions", "exercises")
KIT_DISTRIBUTION = "lesson6_grader"

RLIMITS, USER, CAPABILITIES, NO_NEW_PRIVS = "rlimits", "user", "capabilities", "no_new_privs"
LANDLOCK_FS, LANDLOCK_NET, LANDLOCK_SCOPE, NETNS, IPC, NPROC = (
    "landlock_fs", "landlock_net", "landlock_scope", "netns", "ipc", "nproc")
CGROUP = "cgroup"
# Layers a caller may leave out (tests and benchmarks do, one layer at a time); "landlock" leaves out all three.
SKIPPABLE = frozenset({USER, CAPABILITIES, "landlock", NETNS, IPC, NPROC, CGROUP})
CGROUP_PREFIX = "lesson6-probe-"
CGROUP_KILL_SECONDS = 5
# What require=True insists on: each need is met by any one of its layers.
REQUIREMENTS = (
    ("writes only inside scratch and nothing of the kit readable", (LANDLOCK_FS,)),
    ("no network", (LANDLOCK_NET, NETNS)),
    ("no signal to the grader", (USER, LANDLOCK_SCOPE)),
    ("no IPC object shared with another probe", (IPC,)),
)

# Read (and execute) rights on what any Python program needs; devices one by one, never /dev as a whole
# (a root probe could read the raw disk and with it the kit).
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/sys")
DEVICES_READ = ("/dev/urandom", "/dev/random", "/dev/zero")
DEVICES_READ_WRITE = ("/dev/null", "/dev/full")

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x10000000, 0x08000000, 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 38, 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522

SANDBOX_REQUIRED = ("The sandbox is required but cannot be set up on this machine. Expected {need}; "
                    "received: {received}.")
UNKNOWN_SKIP = "Expected layers to skip among {known}; received skip={skip!r}"
NO_SUCH_USER = "Expected an existing probe user; received probe_user={name!r}, which this machine does not know"
ROOT_PROBE_USER = "Expected an unprivileged probe user; received probe_user={name!r} with uid 0"
USERADD_FAILED = "Could not create the probe user {name!r}: useradd exited with status {code}: {message}"
USER_HINT = ("to run the probe as {user}, put the kit and its venv where {user} may read them (outside mode-700 "
             "folders such as /root), or name another user with --probe-user")


@dataclass(frozen=True)
class Layer:
    """One isolation layer: whether it held for this probe, and why not when it did not."""

    name: str
    held: bool
    reason: str


def _libc():
    """Return the C library with errno kept, or None where there is none (not a Unix)."""
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def _check(result: int, what: str) -> None:
    """Raise OSError when a libc call returned -1."""
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _prctl(option: int, value: int) -> None:
    """Call prctl(option, value); raise OSError when it fails."""
    _check(_LIBC.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


def _unshare(flags: int) -> None:
    """Move the calling process into new namespaces."""
    if hasattr(os, "unshare"):
        os.unshare(flags)
    else:
        _check(_LIBC.unshare(flags), "unshare")


def _mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    """Call mount(2); raise OSError when it fails."""
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _check(_LIBC.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), None),
           f"mount({source!r}, {target!r}, {fstype!r})")


def mqueue_mounts() -> list[str]:
    """Return where an mqueue file system is mounted (/dev/mqueue, usually): it shows the queues of its namespace."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    return [line.split(" - ")[0].split()[4] for line in lines if " - mqueue " in line]


def _enter_namespaces(flags: int, outer_ids: tuple[int, int], mqueues: Sequence[str] = ()) -> None:
    """Enter new namespaces (flags), map the caller's ids in a new user namespace, remount the mqueue mounts.

    A new IPC namespace's queues show at an mqueue mount point only when it is mounted anew from inside; the
    mount namespace's mounts turn private first, so that no mount made here reaches the machine's.
    """
    _unshare(flags)
    if flags & CLONE_NEWUSER:
        _map_ids(*outer_ids)
    if mqueues:
        _mount("none", "/", None, MS_REC | MS_PRIVATE)
        for target in mqueues:
            _mount("mqueue", target, "mqueue", 0)


def _map_ids(uid: int, gid: int) -> None:
    """Map the caller's own uid and gid into the user namespace it just created."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as stream:
            stream.write(text)


def _drop_capabilities(last_cap: int) -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets, so exec gives root nothing back."""
    for cap in range(last_cap + 1):
        _check(_LIBC.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {cap})")
    _check(_LIBC.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0), "prctl(PR_CAP_AMBIENT)")
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    _check(_LIBC.capset(header, (ctypes.c_uint32 * 6)()), "capset")


def _last_capability() -> int:
    """Return the highest capability number the kernel knows."""
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


def _in_child(check: Callable[[], dict]) -> dict:
    """Run check() in a forked child and return the dict it returns (its failure becomes {'error': ...})."""
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process: the child only syscalls
        pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            try:
                answer = check()
            except BaseException as error:  # noqa: BLE001 - every failure must reach the parent as text
                answer = {"error": f"{type(error).__name__}: {error}"}
            os.write(write_fd, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as stream:
        data = stream.read()
    os.waitpid(pid, 0)
    try:
        return json.loads(data)
    except ValueError:
        return {"error": "the test child died before it answered"}


# --- what the machine allows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    """What this machine allows a child of this process, found once per process."""

    is_linux: bool
    is_root: bool
    landlock_abi: int
    landlock_error: str   # "" when a child could restrict itself
    netns_flags: int      # CLONE_* flags that give a child its own network namespace, 0 when none do
    netns_error: str
    last_cap: int
    cgroup_base: str = ""   # the cgroup v2 folder this process may make probe cgroups in, "" when none
    cgroup_error: str = ""
    ipc_flags: int = 0      # CLONE_* flags that give a child its own IPC (and, for /dev/mqueue, mount) namespace
    ipc_error: str = ""
    mqueue_mounts: tuple[str, ...] = ()  # mqueue mount points a child with ipc_flags remounts


def _host_check(is_root: bool, abi: int) -> dict:
    """In a throwaway child: try a network namespace, no_new_privs and a Landlock restriction; say what failed."""
    answer = {"netns_flags": 0, "netns_error": "", "landlock_error": ""}
    flags = CLONE_NEWNET if is_root else CLONE_NEWUSER | CLONE_NEWNET
    uid, gid = os.getuid(), os.getgid()
    try:
        _unshare(flags)
        if not is_root:
            _map_ids(uid, gid)
        answer["netns_flags"] = flags
    except OSError as error:
        answer["netns_error"] = f"unshare({'CLONE_NEWNET' if is_root else 'CLONE_NEWUSER|CLONE_NEWNET'}): {error}"
    try:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        if abi:
            ruleset = landlock.Ruleset(landlock.fs_rights(abi), landlock.net_rights(abi), landlock.scopes(abi))
            landlock.restrict_self(ruleset.fd)
    except OSError as error:
        answer["landlock_error"] = str(error)
    return answer


def _ipc_check(is_root: bool) -> dict:
    """In a throwaway child: try an IPC namespace (and a mount namespace with fresh mqueue mounts where any are)."""
    mounts, uid, gid = mqueue_mounts(), os.getuid(), os.getgid()
    flags = CLONE_NEWIPC | (CLONE_NEWNS if mounts else 0) | (0 if is_root else CLONE_NEWUSER)
    names = "|".join(name for name, flag in (("CLONE_NEWUSER", CLONE_NEWUSER), ("CLONE_NEWIPC", CLONE_NEWIPC),
                                             ("CLONE_NEWNS", CLONE_NEWNS)) if flags & flag)

    error = _in_child(lambda: _enter_namespaces(flags, (uid, gid), mounts) or {}).get("error", "")
    if error:
        return {"ipc_flags": 0, "ipc_error": f"unshare({names}) and mqueue mounts: {error}" if mounts
                else f"unshare({names}): {error}", "mqueue_mounts": mounts}
    return {"ipc_flags": flags, "ipc_error": "", "mqueue_mounts": mounts}


@functools.cache
def host() -> Host:
    """Return what this machine allows (probed once per process by a forked child)."""
    is_linux = sys.platform.startswith("linux") and _LIBC is not None
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not is_linux:
        return Host(False, is_root, 0, f"not Linux ({sys.platform})", 0, f"not Linux ({sys.platform})", 0)
    abi = landlock.abi_version()
    answer = _in_child(lambda: _host_check(is_root, abi))
    error = answer.get("error", "")
    answer.update(_ipc_check(is_root))
    cgroup_base, cgroup_error = _cgroup_check()
    return Host(True, is_root, abi, answer.get("landlock_error", error), answer.get("netns_flags", 0),
                answer.get("netns_error", error), _last_capability(), cgroup_base, cgroup_error,
                answer.get("ipc_flags", 0), answer.get("ipc_error", error), tuple(answer.get("mqueue_mounts", ())))


# --- the probe's cgroup ---------------------------------------------------------------------------------------


def _cgroup_folder() -> Path:
    """Return the cgroup v2 folder of this process; raise OSError saying why there is none."""
    mounts = [line.split(" - ")[0].split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if " - cgroup2 " in line]
    own = [line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")]
    if not mounts or not own:
        raise OSError(errno.ENOENT, "no cgroup v2 hierarchy is mounted" if not mounts else
                      "this process is in no cgroup v2 group")
    folder = Path(mounts[0]) / own[0].lstrip("/")
    if not folder.is_dir():
        raise OSError(errno.ENOENT, f"this process's cgroup {own[0]} is not under {mounts[0]}")
    return folder


def _cgroup_check() -> tuple[str, str]:
    """Return (folder, "") where a child cgroup can be made, entered and killed, else ("", why not)."""
    try:
        base = _cgroup_folder()
        _remove_stale_cgroups(base)
        trial = make_cgroup(base)
    except OSError as error:
        return "", f"cgroup v2: {error}"
    try:
        if not (trial / "cgroup.kill").exists():
            return "", "cgroup v2 without cgroup.kill (Linux < 5.14)"
        entered = _in_child(lambda: (trial / "cgroup.procs").write_text("0") and {})
        if entered.get("error"):
            return "", f"cgroup v2: a child cannot enter {trial}: {entered['error']}"
        return str(base), ""
    finally:
        remove_cgroup(trial)


def _remove_stale_cgroups(base: Path) -> None:
    """Kill and remove the probe cgroups of graders that died without removing theirs (named by their pid)."""
    for folder in base.glob(f"{CGROUP_PREFIX}*"):
        pid = folder.name[len(CGROUP_PREFIX):].partition("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            try:
                remove_cgroup(folder)
            except OSError:
                pass  # another grader is removing it


def make_cgroup(base: Path | str) -> Path:
    """Make a new cgroup for one probe under base; return its folder."""
    folder = Path(base) / f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    return folder


def kill_cgroup(folder: Path) -> None:
    """Kill every process in the cgroup at once (cgroup.kill) and wait until it is empty."""
    deadline = time.monotonic() + CGROUP_KILL_SECONDS
    try:
        (folder / "cgroup.kill").write_text("1")
        while "populated 1" in (folder / "cgroup.events").read_text() and time.monotonic() < deadline:
            time.sleep(0.005)
    except FileNotFoundError:
        pass  # already removed


def remove_cgroup(folder: Path) -> None:
    """Kill what is left in the cgroup and remove it."""
    kill_cgroup(folder)
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass


# --- the probe's user ---------------------------------------------------------------------------------------


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


_OWN_UID = False


def give_probes_a_uid_per_process(enabled: bool = True) -> None:
    """Make the probes this process plans run as worker_uid() instead of the probe account's uid (batch workers)."""
    global _OWN_UID
    _OWN_UID = enabled


def uid_per_process() -> bool:
    """Return whether this process's probes get worker_uid() (see give_probes_a_uid_per_process)."""
    return _OWN_UID


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
def _runnable(uid: int, gid: int, pythons: tuple[Path, ...], paths: tuple[Path, ...]) -> tuple[Path | None, str]:
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

    answer = _in_child(check)
    return (Path(answer["python"]), "") if "python" in answer else (None, answer.get("error", ""))


def _unreachable(uid: int, gid: int, pythons: Sequence[Path], paths: Sequence[Path]) -> str:
    """Return why uid can run none of pythons with all it reads and paths ("" when it can), asked as that user."""
    return _runnable(uid, gid, tuple(pythons), tuple(Path(path) for path in paths))[1]


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

    error = _in_child(check).get("error")
    if error:
        raise OSError(errno.EPERM, f"could not kill the processes of uid {uid}: {error}")


# --- Landlock rules -------------------------------------------------------------------------------------------


def _resolved(paths: Iterable[Path | str]) -> list[Path]:
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
    blocked = {str(path) for path in _resolved(blocked)}
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

    for root in _resolved(roots):
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
    return _resolved(candidates)


def kit_paths(kit_root: Path | str, site_dirs: Iterable[Path | str] = ()) -> list[Path]:
    """Return the kit's tree and its entries in each site-packages folder: packages, dist-info, editable hooks."""
    paths = [Path(kit_root)]
    for site_dir in _resolved(site_dirs):
        for entry in site_dir.iterdir():
            name = entry.name.lower().replace("-", "_")
            if entry.name in KIT_PACKAGES or name.startswith(KIT_DISTRIBUTION) or (
                    name.startswith("__editable__") and KIT_DISTRIBUTION in name):
                paths.append(entry)
    return _resolved(paths)


def _ruleset(abi: int, scratch: Path, readable: Sequence[Path], blocked: Sequence[Path]) -> landlock.Ruleset:
    """Build the probe's Landlock ruleset: read the runtime, read and write scratch, nothing else; no TCP."""
    ruleset = landlock.Ruleset(landlock.fs_rights(abi), landlock.net_rights(abi), landlock.scopes(abi))
    try:
        readable = cover([*SYSTEM_READ, *readable], blocked)
        for path in readable.whole:
            ruleset.allow(str(path), landlock.READ)
        for path in readable.listed:
            ruleset.allow(str(path), landlock.READ_DIR)
        for device in _resolved(DEVICES_READ):
            ruleset.allow(str(device), landlock.READ_FILE)
        for device in _resolved(DEVICES_READ_WRITE):
            ruleset.allow(str(device), landlock.READ_WRITE_DEVICE | landlock.IOCTL_DEV)
        for path in cover([scratch], blocked).whole:
            ruleset.allow(str(path), ruleset.handled_fs)
    except BaseException:
        ruleset.close()
        raise
    return ruleset


# --- the plan -----------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """The layers one probe gets; `preexec()` applies them in the child, `layers` says which held."""

    layers: list[Layer]
    scratch: Path | None = None  # the probe's only writable folder, resolved
    uid: int | None = None       # the probe's own uid (kill_uid(uid) kills all it started), None when it has none
    gid: int | None = None
    user: str | None = None
    memory_bytes: int = 4 * 2**30
    max_processes: int = DEFAULT_MAX_PROCESSES
    cgroup: Path | None = None   # the probe's own cgroup (kill_cgroup(cgroup) kills all it started), None when none
    python: Path | None = None   # the interpreter the probe's user can run (plan()'s python or its real file)
    _ruleset: landlock.Ruleset | None = None
    _netns_flags: int = 0
    _ipc_flags: int = 0
    _mqueues: tuple[str, ...] = ()
    _drop_caps: bool = False
    _last_cap: int = 0
    _outer_ids: tuple[int, int] = (0, 0)
    _linux: bool = True

    def held(self, name: str) -> bool:
        """Return whether the named layer held."""
        return any(layer.name == name and layer.held for layer in self.layers)

    def as_dict(self) -> dict:
        """Return the plan as the report records it (JSON-ready)."""
        return {"user": self.user, "uid": self.uid,
                "layers": [{"name": layer.name, "held": layer.held, "reason": layer.reason} for layer in self.layers]}

    def missing(self) -> list[str]:
        """Return the needs of REQUIREMENTS that no held layer meets."""
        return [need for need, names in REQUIREMENTS if not any(self.held(name) for name in names)]

    def preexec(self) -> Callable[[], None]:
        """Return the function for Popen(preexec_fn=...) that applies every held layer in the child."""
        if self.held(LANDLOCK_FS) and self._ruleset is None:
            raise RuntimeError("Expected an open plan; received one already closed, whose Landlock rules are gone")
        uses_nproc, no_new_privs, launcher = self.held(NPROC), self.held(NO_NEW_PRIVS), os.getpid()
        namespaces = self._netns_flags | self._ipc_flags

        cgroup_procs = str(self.cgroup / "cgroup.procs") if self.cgroup else None

        def apply() -> None:
            if cgroup_procs:  # first: from here on, every process this child starts is in the probe's cgroup
                with open(cgroup_procs, "w") as procs:
                    procs.write("0")
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
            if uses_nproc:
                resource.setrlimit(resource.RLIMIT_NPROC, (self.max_processes, self.max_processes))
            if namespaces:  # before giving up root: only root (or a new user namespace) may unshare and mount
                _enter_namespaces(namespaces, self._outer_ids, self._mqueues)
            if self.uid is not None:
                os.setgroups([])
                os.setgid(self.gid)
                os.setuid(self.uid)
            elif self._drop_caps:
                _drop_capabilities(self._last_cap)
            if self._linux:  # the death signal after setuid, which clears it
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                if os.getppid() != launcher:
                    os._exit(1)  # the launcher died before the death signal was set
            if self._ruleset is not None:
                _prctl(PR_SET_NO_NEW_PRIVS, 1)
                landlock.restrict_self(self._ruleset.fd)
            elif no_new_privs:
                _prctl(PR_SET_NO_NEW_PRIVS, 1)

        return apply

    def close_ruleset(self) -> None:
        """Close the Landlock ruleset (children already started keep their restrictions)."""
        if self._ruleset is not None:
            self._ruleset.close()
            self._ruleset = None

    def close(self) -> None:
        """Close the Landlock ruleset, kill every process left in the probe's cgroup and remove the cgroup."""
        self.close_ruleset()
        if self.cgroup is not None:
            remove_cgroup(self.cgroup)
            self.cgroup = None

    def __enter__(self) -> "Plan":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def plan(scratch: Path, readable: Sequence[Path] = (), blocked: Sequence[Path] = (), *,
         probe_user: str | None = None, memory_bytes: int = 4 * 2**30, require: bool = False,
         max_processes: int = DEFAULT_MAX_PROCESSES, python: Path | str = sys.executable,
         skip: Collection[str] = (), probe_uid: int | None = None) -> Plan:
    """Find the layers this machine allows for a probe, give scratch to the probe's user, and return the Plan.

    scratch: the probe's only writable folder (cwd, HOME, TMPDIR); chowned, recursively, to the probe's user.
    readable: what the probe may read besides the system folders and the interpreter: site-packages folders,
        the runner and the files it loads by path. blocked: what no rule may cover (the kit's tree, its
        site-packages entries: see kit_paths()); a readable folder that contains one is allowed entry by entry.
    probe_user: the account the probe runs as when the grader is root (default lesson6-probe, else nobody).
    probe_uid: a uid to run as instead of the account's, in its group (default worker_uid() in a process that called
        give_probes_a_uid_per_process(), else none); where it cannot be used, the account's uid is.
    require: raise RuntimeError unless every need of REQUIREMENTS is met.
    python: the interpreter the probe runs; where the probe's user cannot run it by this path (a venv in a folder
        closed to that user) but can by its real file, and can read what it needs, the plan's `python` is that file.
    skip: layers to leave out (see SKIPPABLE), for tests and benchmarks.
    """
    if not set(skip) <= SKIPPABLE:
        raise ValueError(UNKNOWN_SKIP.format(known=sorted(SKIPPABLE), skip=sorted(skip)))
    machine, scratch = host(), Path(os.path.realpath(scratch))
    limits = (f"address space {memory_bytes:,} bytes, files {FILE_SIZE_LIMIT:,} bytes, no core dumps, "
              "killed with the launcher")
    result = Plan(scratch=scratch, layers=[Layer(RLIMITS, True, limits)], memory_bytes=memory_bytes,
                  max_processes=max_processes, python=Path(os.path.abspath(python)), _last_cap=machine.last_cap,
                  _linux=machine.is_linux, _outer_ids=(os.getuid(), os.getgid()) if hasattr(os, "getuid") else (0, 0))
    _plan_user(result, machine, scratch, readable, probe_user, python, skip, probe_uid)
    linux = "" if machine.is_linux else f"not Linux ({sys.platform})"
    result.layers.append(Layer(NO_NEW_PRIVS, machine.is_linux, linux or "prctl(PR_SET_NO_NEW_PRIVS)"))
    _plan_landlock(result, machine, scratch, [*runtime_paths(python), *readable], blocked, skip)
    if NETNS in skip:
        result.layers.append(Layer(NETNS, False, "left out by the caller"))
    elif machine.netns_flags:
        result._netns_flags = machine.netns_flags
        result.layers.append(Layer(NETNS, True, "a network namespace of its own: no interface is up"))
    else:
        result.layers.append(Layer(NETNS, False, machine.netns_error))
    _plan_ipc(result, machine, skip)
    _plan_cgroup(result, machine, skip)
    if NPROC in skip or result.uid is None:
        reason = "left out by the caller" if NPROC in skip else "the probe has no uid of its own to count"
        result.layers.append(Layer(NPROC, False, reason))
    else:
        result.layers.append(Layer(NPROC, True, f"at most {max_processes} processes for uid {result.uid}"))
    if require and result.missing():
        result.close()
        received = "; ".join(f"{layer.name}: {layer.reason}" for layer in result.layers if not layer.held)
        raise RuntimeError(SANDBOX_REQUIRED.format(need=", ".join(result.missing()), received=received))
    return result


def _plan_user(result: Plan, machine: Host, scratch: Path, readable: Sequence[Path], probe_user: str | None,
               python: Path | str, skip: Collection[str], probe_uid: int | None) -> None:
    """Add the user and capabilities layers; chown scratch when the probe gets a user of its own."""
    if not machine.is_root:
        reason = "the grader does not run as root: the probe runs as the grader's own user"
        result.layers.append(Layer(USER, False, reason))
        return
    if USER in skip:
        reason = "left out by the caller"
    else:
        account = probe_account(probe_user)
        pythons = interpreter_paths(python)
        # What lies in scratch becomes the probe's own below; it need not be readable before.
        readable = [path for path in _resolved(readable) if path != scratch and scratch not in path.parents]
        if probe_uid is None and _OWN_UID:
            probe_uid = worker_uid()
        own_uid_note = ""
        if probe_uid is not None:
            reason = _own_uid_unusable(probe_uid, account, pythons, readable)
            if not reason:
                _give_user(result, scratch, probe_uid, account, f"runs as uid {probe_uid}, a uid of this grading "
                           f"process's own, in the group of {account.pw_name}", pythons, readable)
                return
            own_uid_note = f"; uid {probe_uid} of its own could not be used: {reason}"
        reason = _unreachable(account.pw_uid, account.pw_gid, pythons, readable)
        if not reason:
            _give_user(result, scratch, account.pw_uid, account,
                       f"runs as {account.pw_name} (uid {account.pw_uid}){own_uid_note}", pythons, readable)
            return
        reason = f"user {account.pw_name} cannot be used: {reason}; {USER_HINT.format(user=account.pw_name)}"
    result.layers.append(Layer(USER, False, f"{reason}; the probe runs as root"))
    if CAPABILITIES in skip or not machine.is_linux:
        result.layers.append(Layer(CAPABILITIES, False, "left out by the caller" if machine.is_linux else "not Linux"))
    else:
        result._drop_caps = True
        result.layers.append(Layer(CAPABILITIES, True, "root without any capability"))


def _own_uid_unusable(uid: int, account: pwd.struct_passwd, pythons: Sequence[Path], paths: Sequence[Path]) -> str:
    """Return why uid cannot be the probe's own ("" when it can): an account has it, or it cannot run the probe."""
    try:
        return f"it belongs to the account {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return _unreachable(uid, account.pw_gid, pythons, paths)


def _give_user(result: Plan, scratch: Path, uid: int, account: pwd.struct_passwd, reason: str,
               pythons: Sequence[Path], paths: Sequence[Path]) -> None:
    """Make uid (in the account's group) the probe's user: scratch becomes its own, the user layer holds."""
    result.python = _runnable(uid, account.pw_gid, tuple(pythons), tuple(paths))[0]
    if result.python != pythons[0]:
        reason += f"; by the interpreter {result.python}, as {pythons[0]} lies where it may not enter"
    chown_tree(scratch, uid, account.pw_gid)
    result.uid, result.gid, result.user = uid, account.pw_gid, account.pw_name
    result.layers.append(Layer(USER, True, reason))


def _plan_ipc(result: Plan, machine: Host, skip: Collection[str]) -> None:
    """Add the ipc layer: an IPC namespace of the probe's own (with its own mqueue mounts where there are any)."""
    if IPC in skip:
        result.layers.append(Layer(IPC, False, "left out by the caller"))
    elif not machine.ipc_flags:
        result.layers.append(Layer(IPC, False, machine.ipc_error or f"not Linux ({sys.platform})"))
    else:
        result._ipc_flags, result._mqueues = machine.ipc_flags, machine.mqueue_mounts
        mounts = f"; {', '.join(machine.mqueue_mounts)} shows its own queues" if machine.mqueue_mounts else ""
        result.layers.append(Layer(IPC, True, "an IPC namespace of its own: no System V or POSIX queue, semaphore "
                                   f"or shared memory of another probe, none left behind{mounts}"))


def _plan_cgroup(result: Plan, machine: Host, skip: Collection[str]) -> None:
    """Add the cgroup layer: a cgroup of the probe's own, where this process may make one."""
    if CGROUP in skip:
        result.layers.append(Layer(CGROUP, False, "left out by the caller"))
    elif not machine.cgroup_base:
        result.layers.append(Layer(CGROUP, False, machine.cgroup_error or "not Linux"))
    else:
        try:
            result.cgroup = make_cgroup(machine.cgroup_base)
        except OSError as error:
            result.layers.append(Layer(CGROUP, False, f"cgroup v2: {error}"))
            return
        result.layers.append(Layer(CGROUP, True, "a cgroup of its own, killed whole at the end"))


def _plan_landlock(result: Plan, machine: Host, scratch: Path, readable: Sequence[Path], blocked: Sequence[Path],
                   skip: Collection[str]) -> None:
    """Add the three Landlock layers and build the ruleset the child will enforce."""
    abi = machine.landlock_abi
    if "landlock" in skip:
        reason = "left out by the caller"
    elif not abi:
        reason = machine.landlock_error if not machine.is_linux else "Landlock is not available in this kernel"
    elif machine.landlock_error:
        reason = f"Landlock ABI {abi} is reported but a process cannot restrict itself: {machine.landlock_error}"
    else:
        result._ruleset = _ruleset(abi, scratch, readable, blocked)
        reason = ""
    held = result._ruleset is not None
    result.layers += [
        Layer(LANDLOCK_FS, held, f"Landlock ABI {abi}: writes only in scratch, reads only the runtime" if held
              else reason),
        Layer(LANDLOCK_NET, held and abi >= 4, "no TCP bind or connect" if held and abi >= 4
              else reason or f"Landlock ABI {abi} < 4 has no network rights"),
        Layer(LANDLOCK_SCOPE, held and abi >= 6, "no signal or abstract socket outside the probe" if held and abi >= 6
              else reason or f"Landlock ABI {abi} < 6 has no scopes"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print which layers hold on this machine, or create the probe's account (`create-user [NAME]`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["create-user"]:
        name = argv[1] if len(argv) > 1 else DEFAULT_PROBE_USER
        print(f"probe user {name}: uid {ensure_probe_user(name)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="lesson6-isolation-") as scratch, plan(Path(scratch)) as found:
        for layer in found.layers:
            print(f"{layer.name:15} {'held' if layer.held else 'NOT HELD':9} {layer.reason}")
        missing = found.missing()
        print("missing: " + ", ".join(missing) if missing else "every requirement is met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
