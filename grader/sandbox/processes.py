"""Process tools of the sandbox: find every process a probe started, measure it, and kill it.

Used by the probe's launcher and by the batch's worker pool (to kill a worker with everything below it).
"""

import ctypes
import os
import signal
import time

TOKEN_VARIABLE = "LESSON6_PROBE_TOKEN"


def become_subreaper():
    """Make this process adopt orphans of its descendants (Linux), so escaped probe processes stay findable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # not Linux: the token scan still finds escaped processes


def read_stat(pid):
    """Return (ppid, pgid, session, state, starttime) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[1]), int(fields[2]), int(fields[3]), fields[0], int(fields[19])


def process_table():
    """Return {pid: (ppid, pgid, session, state, starttime)} for every visible process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat:
                table[int(entry)] = stat
    return table


def descendants(table, root):
    """Return the pids below root in table."""
    children = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def resident_bytes(pids):
    """Return the summed resident memory of pids."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


def owner(pid):
    """Return the real uid of a process, or None if it is gone."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def carries_token(pid, token):
    """Return whether a process was started with this probe's token in its environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return f"{TOKEN_VARIABLE}={token}".encode() in environ.read().split(b"\0")
    except OSError:
        return False


class ProbeProcesses:
    """Every process one probe run started: tracked while it runs, all killed at the end."""

    def __init__(self, token, uid=None, keep=(), cgroup=None):
        self.token = token
        self.cgroup = cgroup   # the probe's own cgroup, when it has one: every process in it is the probe's
        self.keep = set(keep)  # processes that carry the token but are not the probe's (a zygote)
        self.uid = uid         # the probe's own uid, when it has one: every process of it is the probe's
        self.sessions = set()  # the runners' session ids (= their pids, started with start_new_session)
        self.seen = set()      # (pid, starttime) of every descendant seen while polling

    def poll(self, runner_pid):
        """Record the runner's process tree and return its resident memory."""
        table = process_table()
        tree = descendants(table, runner_pid) | {runner_pid}
        self.seen.update((pid, table[pid][4]) for pid in tree if pid in table)
        return resident_bytes(tree)

    def belongs(self, pid, stat):
        """Return whether a live process is one the probe started."""
        _ppid, pgid, session, _state, starttime = stat
        return (session in self.sessions or pgid in self.sessions or (pid, starttime) in self.seen
                or (self.uid is not None and owner(pid) == self.uid)
                or carries_token(pid, self.token))

    def targets(self):
        """Return the live processes of this probe, anywhere on the machine."""
        table = process_table()
        me = os.getpid()
        return {pid: stat for pid, stat in table.items()
                if pid != me and pid not in self.keep and stat[3] != "Z" and self.belongs(pid, stat)}

    def kill_all(self):
        """SIGKILL every probe process until none is left; reap the ones this process adopted."""
        if self.cgroup is not None:
            from grader.sandbox.kernel import kill_cgroup

            kill_cgroup(self.cgroup)
        if self.uid is not None:
            from grader.sandbox.account import kill_uid

            kill_uid(self.uid)
        for _round in range(50):
            targets = self.targets()
            for pid in targets:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.reap_adopted()
            if not targets:
                return
            time.sleep(0.02)

    def reap_adopted(self):
        """Collect the exit status of probe processes that were re-parented to this process."""
        me = os.getpid()
        for pid, stat in process_table().items():
            if stat[0] == me and stat[3] == "Z" and self.belongs(pid, stat):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass


def kill_tree(root_pid, rounds=20):
    """SIGKILL a process and every process below it until none is left."""
    for _round in range(rounds):
        pids = descendants(process_table(), root_pid) | {root_pid}
        alive = False
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                alive = True
            except OSError:
                pass
        if not alive:
            return
        time.sleep(0.05)
