"""Landlock (Linux >= 5.13) through its three system calls, with ctypes and nothing else.

The ruleset is built in the parent (it opens every allowed path), and the child only calls
`restrict_self(fd)` between fork and exec: a ruleset file descriptor survives fork, so the child needs
no path lookups of its own. Rights and numbers come from <linux/landlock.h>.
"""

import ctypes
import errno
import os
import platform

# The generic system-call table, shared by x86_64, aarch64, riscv64, ppc64le, s390x and 32-bit arm.
SYSCALLS = {"create_ruleset": 444, "add_rule": 445, "restrict_self": 446}
GENERIC_TABLE_MACHINES = ("x86_64", "amd64", "aarch64", "arm64", "riscv64", "ppc64le", "ppc64", "s390x", "armv7l")

CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1

# Filesystem rights by the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER = 1 << 13     # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
# Rights a rule on a single file (not a folder) may carry.
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

READ = EXECUTE | READ_FILE | READ_DIR
READ_WRITE_DEVICE = READ_FILE | WRITE_FILE | TRUNCATE

# Network rights (ABI 4) and scopes (ABI 6).
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1


class RulesetAttr(ctypes.Structure):
    """struct landlock_ruleset_attr; the size passed says which fields the kernel reads."""

    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    """struct landlock_path_beneath_attr, packed."""

    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    """Return the C library with errno kept, or None where there is none to load."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return libc
    except (OSError, AttributeError):
        return None


LIBC = _libc()


def _syscall(name: str, *args) -> int:
    """Call a Landlock system call; raise OSError with the kernel's errno when it fails."""
    if LIBC is None or platform.system() != "Linux" or platform.machine().lower() not in GENERIC_TABLE_MACHINES:
        raise OSError(errno.ENOSYS, f"no Landlock system calls on {platform.system()} {platform.machine()}")
    result = LIBC.syscall(ctypes.c_long(SYSCALLS[name]), *args)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock_{name}: {os.strerror(code)}")
    return result


def abi_version() -> int:
    """Return the kernel's Landlock ABI version, or 0 where Landlock is missing or disabled."""
    try:
        return _syscall("create_ruleset", None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    except OSError:
        return 0


def fs_rights(abi: int) -> int:
    """Return every filesystem right the ABI knows."""
    return max((rights for version, rights in FS_RIGHTS_BY_ABI.items() if version <= abi), default=0)


def net_rights(abi: int) -> int:
    """Return every network right the ABI knows."""
    return NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0


def scopes(abi: int) -> int:
    """Return every scope the ABI knows."""
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


class Ruleset:
    """A Landlock ruleset under construction in the parent: handled rights plus allowed paths."""

    def __init__(self, handled_fs: int, handled_net: int = 0, scoped: int = 0):
        self.handled_fs = handled_fs
        attr = RulesetAttr(handled_fs, handled_net, scoped)
        size = 24 if scoped else 16 if handled_net else 8
        self.fd = _syscall("create_ruleset", ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))

    def allow(self, path: str, access: int) -> None:
        """Allow `access` on path and everything beneath it (only file rights when path is a file)."""
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            if not os.path.isdir(path):
                access &= FILE_RIGHTS
            attr = PathBeneathAttr(access & self.handled_fs, fd)
            _syscall("add_rule", ctypes.c_int(self.fd), ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(attr),
                     ctypes.c_uint32(0))
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close the ruleset's file descriptor (a child already restricted keeps its domain)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def restrict_self(ruleset_fd: int) -> None:
    """Enforce a ruleset on the calling thread and its future children (needs no_new_privs or CAP_SYS_ADMIN)."""
    _syscall("restrict_self", ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))
