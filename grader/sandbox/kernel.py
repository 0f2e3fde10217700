"""The system calls the isolation layers use, and what this machine allows a child (found once per process).

Every check runs in a throwaway forked child (`in_child`): a namespace, a Landlock restriction or a cgroup that
fails there costs nothing, and one that works is known to work before any probe depends on it.
"""

import ctypes
import errno
import functools
import json
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import landlock

CGROUP_PREFIX = "lesson6-probe-"
CGROUP_KILL_SECONDS = 5
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x10000000, 0x08000000, 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 0x1, 0x2, 0x4, 0x20, 0x1000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 38, 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522


def _libc():
    """Return the C library with errno kept, or None where there is none (not a Unix)."""
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, AttributeError):
        return None

LIBC = _libc()


def _check(result: int, what: str) -> None:
    """Raise OSError when a libc call returned -1."""
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def prctl(option: int, value: int) -> None:
    """Call prctl(option, value); raise OSError when it fails."""
    _check(LIBC.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces."""
    if hasattr(os, "unshare"):
        os.unshare(flags)
    else:
        _check(LIBC.unshare(flags), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """Call mount(2); raise OSError when it fails."""
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _check(LIBC.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
           f"mount({source!r}, {target!r}, {fstype!r})")


def mqueue_mounts() -> list[str]:
    """Return where an mqueue file system is mounted (/dev/mqueue, usually): it shows the queues of its namespace."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    return [line.split(" - ")[0].split()[4] for line in lines if " - mqueue " in line]


def enter_namespaces(flags: int, outer_ids: tuple[int, int], mqueues: Sequence[str] = ()) -> None:
    """Enter new namespaces (flags), map the caller's ids in a new user namespace, remount the mqueue mounts.

    A new IPC namespace's queues show at an mqueue mount point only when it is mounted anew from inside; the
    mount namespace's mounts turn private first, so that no mount made here reaches the machine's.
    """
    unshare(flags)
    if flags & CLONE_NEWUSER:
        map_ids(*outer_ids)
    if mqueues:
        mount("none", "/", None, MS_REC | MS_PRIVATE)
        for target in mqueues:
            mount("mqueue", target, "mqueue", 0)


def map_ids(uid: int, gid: int) -> None:
    """Map the caller's own uid and gid into the user namespace it just created."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as stream:
            stream.write(text)


def drop_capabilities(last_cap: int) -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets, so exec gives root nothing back."""
    for cap in range(last_cap + 1):
        _check(LIBC.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {cap})")
    _check(LIBC.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0), "prctl(PR_CAP_AMBIENT)")
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    _check(LIBC.capset(header, (ctypes.c_uint32 * 6)()), "capset")


def last_capability() -> int:
    """Return the highest capability number the kernel knows."""
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


def in_child(check: Callable[[], dict]) -> dict:
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
        unshare(flags)
        if not is_root:
            map_ids(uid, gid)
        answer["netns_flags"] = flags
    except OSError as error:
        answer["netns_error"] = f"unshare({'CLONE_NEWNET' if is_root else 'CLONE_NEWUSER|CLONE_NEWNET'}): {error}"
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
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

    error = in_child(lambda: enter_namespaces(flags, (uid, gid), mounts) or {}).get("error", "")
    if error:
        return {"ipc_flags": 0, "ipc_error": f"unshare({names}) and mqueue mounts: {error}" if mounts
                else f"unshare({names}): {error}", "mqueue_mounts": mounts}
    return {"ipc_flags": flags, "ipc_error": "", "mqueue_mounts": mounts}


@functools.cache
def host() -> Host:
    """Return what this machine allows (probed once per process by a forked child)."""
    is_linux = sys.platform.startswith("linux") and LIBC is not None
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not is_linux:
        return Host(False, is_root, 0, f"not Linux ({sys.platform})", 0, f"not Linux ({sys.platform})", 0)
    abi = landlock.abi_version()
    answer = in_child(lambda: _host_check(is_root, abi))
    error = answer.get("error", "")
    answer.update(_ipc_check(is_root))
    cgroup_base, cgroup_error = _cgroup_check()
    return Host(True, is_root, abi, answer.get("landlock_error", error), answer.get("netns_flags", 0),
                answer.get("netns_error", error), last_capability(), cgroup_base, cgroup_error,
                answer.get("ipc_flags", 0), answer.get("ipc_error", error), tuple(answer.get("mqueue_mounts", ())))


def cgroup_folder() -> Path:
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
        base = cgroup_folder()
        _remove_stale_cgroups(base)
        trial = make_cgroup(base)
    except OSError as error:
        return "", f"cgroup v2: {error}"
    try:
        if not (trial / "cgroup.kill").exists():
            return "", "cgroup v2 without cgroup.kill (Linux < 5.14)"
        entered = in_child(lambda: (trial / "cgroup.procs").write_text("0") and {})
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
