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

import os
import pwd
import resource
import signal
import sys
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import landlock
from grader.sandbox.account import (
    DEFAULT_PROBE_USER,
    chown_tree,
    ensure_probe_user,
    interpreter_paths,
    probe_account,
    runnable,
    unreachable,
    worker_uid,
)
from grader.sandbox.kernel import (
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    Host,
    drop_capabilities,
    enter_namespaces,
    host,
    make_cgroup,
    prctl,
    remove_cgroup,
)
from grader.sandbox.rules import build_ruleset, resolved, runtime_paths

# RLIMIT_NPROC counts threads too: TensorFlow starts two pools of one thread per core, plus a few of its own.
DEFAULT_MAX_PROCESSES = 64 + 2 * (os.cpu_count() or 1)
FILE_SIZE_LIMIT = 256 * 2**20
RLIMITS, USER, CAPABILITIES, NO_NEW_PRIVS = "rlimits", "user", "capabilities", "no_new_privs"
LANDLOCK_FS, LANDLOCK_NET, LANDLOCK_SCOPE, NETNS, IPC, NPROC = (
    "landlock_fs", "landlock_net", "landlock_scope", "netns", "ipc", "nproc")
CGROUP = "cgroup"
# Layers a caller may leave out (tests and benchmarks do, one layer at a time); "landlock" leaves out all three.
SKIPPABLE = frozenset({USER, CAPABILITIES, "landlock", NETNS, IPC, NPROC, CGROUP})
# What require=True insists on: each need is met by any one of its layers.
REQUIREMENTS = (
    ("writes only inside scratch and nothing of the kit readable", (LANDLOCK_FS,)),
    ("no network", (LANDLOCK_NET, NETNS)),
    ("no signal to the grader", (USER, LANDLOCK_SCOPE)),
    ("no IPC object shared with another probe", (IPC,)),
)

SANDBOX_REQUIRED = ("The sandbox is required but cannot be set up on this machine. Expected {need}; "
                    "received: {received}.")
UNKNOWN_SKIP = "Expected layers to skip among {known}; received skip={skip!r}"
USER_HINT = ("to run the probe as {user}, put the kit and its venv where {user} may read them (outside mode-700 "
             "folders such as /root), or name another user with --probe-user")


@dataclass(frozen=True)
class Layer:
    """One isolation layer: whether it held for this probe, and why not when it did not."""

    name: str
    held: bool
    reason: str


# --- the probe's user ---------------------------------------------------------------------------------------


_OWN_UID = False


def give_probes_a_uid_per_process(enabled: bool = True) -> None:
    """Make the probes this process plans run as worker_uid() instead of the probe account's uid (batch workers)."""
    global _OWN_UID
    _OWN_UID = enabled


def uid_per_process() -> bool:
    """Return whether this process's probes get worker_uid() (see give_probes_a_uid_per_process)."""
    return _OWN_UID


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
                enter_namespaces(namespaces, self._outer_ids, self._mqueues)
            if self.uid is not None:
                os.setgroups([])
                os.setgid(self.gid)
                os.setuid(self.uid)
            elif self._drop_caps:
                drop_capabilities(self._last_cap)
            if self._linux:  # the death signal after setuid, which clears it
                prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                if os.getppid() != launcher:
                    os._exit(1)  # the launcher died before the death signal was set
            if self._ruleset is not None:
                prctl(PR_SET_NO_NEW_PRIVS, 1)
                landlock.restrict_self(self._ruleset.fd)
            elif no_new_privs:
                prctl(PR_SET_NO_NEW_PRIVS, 1)

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
        readable = [path for path in resolved(readable) if path != scratch and scratch not in path.parents]
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
        reason = unreachable(account.pw_uid, account.pw_gid, pythons, readable)
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
        return unreachable(uid, account.pw_gid, pythons, paths)


def _give_user(result: Plan, scratch: Path, uid: int, account: pwd.struct_passwd, reason: str,
               pythons: Sequence[Path], paths: Sequence[Path]) -> None:
    """Make uid (in the account's group) the probe's user: scratch becomes its own, the user layer holds."""
    result.python = runnable(uid, account.pw_gid, tuple(pythons), tuple(paths))[0]
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
        result._ruleset = build_ruleset(abi, scratch, readable, blocked)
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
