"""Attacks a hostile class makes on one another through the grader, graded as a class is: `grader grade` one submission
after another on one machine, and `grader batch` with one worker and with several.

IPC (issue 24): a writer submission leaves a secret in a System V shared-memory segment, message queue and semaphore
and in a POSIX message queue; a reader submission, graded after it (or beside it, in another worker), looks for them.
Each probe has an IPC namespace of its own, so the reader finds nothing and nothing outlives the writer's probe. A
control runs the same pair without the ipc layer and shows that the reader then gets the secret.
"""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from grader.batch import grade_batch
from grader.checker.hidden_tests.cases import probe_request
from grader.options import GradingOptions
from grader.sandbox import isolation, run_probe
from tests.conftest import run_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="IPC namespaces are Linux's")

IPC_OBJECTS = ("shm", "msg", "sem", "mq")

# The writer's objects, each holding the secret (the semaphore holds a number derived from it); hold_seconds keeps
# them (and the probe) alive so that a reader graded at the same time in another worker can look.
IPC_WRITER = """
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY, NAME, SECRET = {key}, {name!r}.encode(), {secret!r}.encode()

class Message(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 64)]

def created(kind, result):
    print(f"writer {{kind}}=" + ("created" if result >= 0 else f"failed errno {{ctypes.get_errno()}}"), flush=True)

shmid = libc.shmget(KEY, 4096, 0o1000 | 0o666)
if shmid >= 0:
    ctypes.memmove(libc.shmat(shmid, None, 0), SECRET, len(SECRET))
created("shm", shmid)
msqid = libc.msgget(KEY, 0o1000 | 0o666)
created("msg", msqid if msqid < 0 else libc.msgsnd(msqid, ctypes.byref(Message(1, SECRET)), 64, 0))
semid = libc.semget(KEY, 1, 0o1000 | 0o666)
created("sem", semid if semid < 0 else libc.semctl(semid, 0, 16, ctypes.c_int({number})))  # SETVAL
mqd = libc.mq_open(NAME, os.O_CREAT | os.O_RDWR, 0o666, None)
created("mq", mqd if mqd < 0 else libc.mq_send(mqd, SECRET, len(SECRET), 0))
print(f"writer window {{time.time():.3f}} {{time.time() + {hold_seconds}:.3f}}", flush=True)
time.sleep({hold_seconds})
"""

# The reader looks for each object by the writer's key and name, again and again for poll_seconds, and prints what
# it found: the secret, or "absent" with the errno of its last try.
IPC_READER = """
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY, NAME = {key}, {name!r}.encode()

class Message(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 64)]

def absent():
    return f"absent (errno {{ctypes.get_errno()}})"

def shm():
    shmid = libc.shmget(KEY, 0, 0)
    return absent() if shmid < 0 else ctypes.string_at(libc.shmat(shmid, None, 0o10000), 64).split(b"\\0")[0].decode()

def msg():
    msqid, message = libc.msgget(KEY, 0), Message()
    if msqid < 0 or libc.msgrcv(msqid, ctypes.byref(message), 64, 0, 0o4000) < 0:  # IPC_NOWAIT
        return absent()
    return message.mtext.decode()

def sem():
    semid = libc.semget(KEY, 0, 0)
    return absent() if semid < 0 else str(libc.semctl(semid, 0, 12))  # GETVAL

def mq():
    mqd, buffer = libc.mq_open(NAME, os.O_RDONLY | os.O_NONBLOCK), ctypes.create_string_buffer(1 << 16)
    if mqd < 0:
        return absent()
    size = libc.mq_receive(mqd, buffer, len(buffer), None)
    return "(empty)" if size < 0 else buffer.raw[:size].decode()

found, started = {{}}, time.time()
while True:
    for kind, look in (("shm", shm), ("msg", msg), ("sem", sem), ("mq", mq)):
        if not found.get(kind, "absent").startswith("absent"):
            continue
        found[kind] = look()
    if not any(value.startswith("absent") for value in found.values()) or time.time() > started + {poll_seconds}:
        break
    time.sleep(0.2)
for kind, value in found.items():
    print(f"reader {{kind}}={{value}}")
print(f"reader window {{started:.3f}} {{time.time():.3f}}")
"""


@dataclasses.dataclass
class IpcPair:
    """One writer/reader pair with its own key, queue name and secret (tests never see one another's objects)."""

    folder: Path
    key: int
    name: str
    secret: str
    number: int

    @classmethod
    def make(cls, folder, *, hold_seconds=0, poll_seconds=0):
        """Write a_writer.py and b_reader.py (graded in that order) into folder; return the pair."""
        folder.mkdir(parents=True, exist_ok=True)
        pair = cls(folder, 0x6C360000 + uuid.uuid4().int % 0xFFFF, f"/lesson6-test-{uuid.uuid4().hex[:12]}",
                   f"secret-{uuid.uuid4().hex[:16]}", 1000 + uuid.uuid4().int % 30000)
        fields = {"key": pair.key, "name": pair.name, "secret": pair.secret, "number": pair.number,
                  "hold_seconds": hold_seconds, "poll_seconds": poll_seconds}
        (folder / "a_writer.py").write_text(IPC_WRITER.format(**fields))
        (folder / "b_reader.py").write_text(IPC_READER.format(**fields))
        return pair

    @property
    def writer(self):
        return self.folder / "a_writer.py"

    @property
    def reader(self):
        return self.folder / "b_reader.py"

    def secrets(self):
        """Return what the reader would print for each object had it found the writer's."""
        return {"shm": self.secret, "msg": self.secret, "sem": str(self.number), "mq": self.secret}

    def left_on_the_machine(self):
        """Return which of the pair's objects exist in this process's (the machine's) IPC namespace."""
        left = [kind for kind in ("shm", "msg", "sem") if self.key in sysvipc_keys(kind)]
        return left + (["mq"] if self.name.lstrip("/") in machine_mqueues() else [])

    def remove_from_the_machine(self):
        """Remove the pair's objects from the machine's namespace (after a control that leaked them)."""
        for option in ("-M", "-Q", "-S"):  # shared memory, message queue, semaphore: by key
            subprocess.run(["ipcrm", option, str(self.key)], capture_output=True, check=False)
        libc().mq_unlink(self.name.encode())


def libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def sysvipc_keys(kind):
    """Return the keys of the System V objects of one kind (shm, msg, sem) in this process's IPC namespace.

    IPC_PRIVATE objects (key 0) are listed by id instead: any process of the machine may make them.
    """
    lines = [line.split() for line in Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:] if line.strip()]
    return {int(fields[0]) & 0xFFFFFFFF or f"private id {fields[1]}" for fields in lines}


def machine_mqueues():
    """Return the names of the POSIX message queues in this process's IPC namespace.

    An mqueue file system shows the queues of the namespace that mounted it: /dev/mqueue where it is mounted, else a
    fresh mount in a mount namespace of a throwaway `unshare` (root only); without either, the names are probed
    with mq_open, which finds only queues that the tests name.
    """
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if " - mqueue " in line:
            return set(os.listdir(line.split(" - ")[0].split()[4]))
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("no mqueue file system is mounted and this test cannot mount one to list the POSIX queues")
    folder = Path(f"/tmp/lesson6-mqueue-{uuid.uuid4().hex}")
    folder.mkdir()
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               f"mount -t mqueue none {folder} && ls -A {folder}"],
                              capture_output=True, text=True, check=False, timeout=30)
    finally:
        folder.rmdir()
    if done.returncode != 0:
        pytest.skip(f"cannot list the POSIX queues here: {done.stderr.strip()}")
    return set(done.stdout.split())


def ipc_layer_or_skip():
    """Return the ipc layer of a plan on this machine; skip the test saying why when it cannot hold."""
    scratch = Path(f"/tmp/lesson6-ipc-{uuid.uuid4().hex}")
    scratch.mkdir()
    try:
        with isolation.plan(scratch) as plan:
            [layer] = [layer for layer in plan.layers if layer.name == isolation.IPC]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not layer.held:
        pytest.skip(f"the ipc layer cannot hold on this machine: {layer.reason}")
    return layer


def printed(text, who):
    """Return {kind: value} from the 'who kind=value' lines a probe printed (in a report or its raw output)."""
    return dict(re.findall(rf"^(?:  \| )?{who} (shm|msg|sem|mq)=(.+?)$", text, flags=re.MULTILINE))


def window(text, who):
    """Return (start, end) of the 'who window start end' line a probe printed."""
    found = re.search(rf"{who} window ([\d.]+) ([\d.]+)", text)
    assert found, f"the {who} printed no window: {text[-2000:]}"
    return float(found.group(1)), float(found.group(2))


def check_nothing_read_nothing_left(pair, writer_output, reader_output, objects_before, landlock_fs):
    """Assert the writer made every object it may, the reader found none, and none is left on the machine.

    Where Landlock's file rules hold, they refuse mq_open (a POSIX queue is a file of the mqueue file system, in no
    folder the probe may open) to writer and reader alike; tests/test_isolation.py shows the ipc layer alone.
    """
    mq = "failed errno 13" if landlock_fs else "created"
    assert printed(writer_output, "writer") == dict.fromkeys(IPC_OBJECTS, "created") | {"mq": mq}, writer_output[-3000:]
    found = printed(reader_output, "reader")
    assert sorted(found) == sorted(IPC_OBJECTS) and all(value.startswith("absent") for value in found.values()), (
        reader_output[-3000:])
    assert pair.left_on_the_machine() == []
    after = machine_ipc_objects()
    assert {kind: after[kind] - objects_before[kind] for kind in after} == {kind: set() for kind in after}, (
        "a probe left IPC objects on the machine")


def machine_ipc_objects():
    """Return every System V key and POSIX queue name in this process's IPC namespace (before/after a test)."""
    return {kind: sysvipc_keys(kind) for kind in ("shm", "msg", "sem")} | {"mq": machine_mqueues()}


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_ipc_control_without_the_ipc_layer_the_reader_gets_the_secret(tmp_path, monkeypatch):
    ipc_layer_or_skip()
    # Without Landlock's file rules too: they refuse POSIX queues on their own (see check_nothing_read_nothing_left).
    without_ipc = dataclasses.replace(isolation.host(), ipc_flags=0, ipc_error="left out by this test", landlock_abi=0)
    monkeypatch.setattr(isolation, "host", lambda: without_ipc)
    pair = IpcPair.make(tmp_path / "class")
    try:
        writer = probe(pair.writer, tmp_path)
        left = pair.left_on_the_machine()
        reader = probe(pair.reader, tmp_path)
    finally:
        pair.remove_from_the_machine()
    assert printed(writer.output, "writer") == dict.fromkeys(IPC_OBJECTS, "created"), writer.output
    assert sorted(left) == sorted(IPC_OBJECTS), "control: without the layer the objects outlive the writer's probe"
    assert printed(reader.output, "reader") == pair.secrets(), reader.output


def probe(path, tmp_path):
    """Run the probe on one .py submission (in a folder of its own, as the grader prepares it); return the result."""
    folder = tmp_path / f"probe-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    shutil.copy(path, folder / "shape_math.py")
    return run_probe(folder, probe_request())


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_ipc_two_grader_grade_runs_pass_nothing_between_students(tmp_path):
    layer = ipc_layer_or_skip()
    pair, before = IpcPair.make(tmp_path / "class"), machine_ipc_objects()
    reports = {}
    for path in (pair.writer, pair.reader):
        done = run_python("-m", "grader", "grade", str(path), "--no-training", "--format", "text")
        assert done.returncode == 0, done.stderr[-3000:]
        reports[path] = done.stdout
        assert pair.left_on_the_machine() == [], f"{path.name}'s probe left IPC objects behind"
    sandbox = [line for line in reports[pair.reader].splitlines() if line.startswith("Sandbox layers that held:")]
    assert sandbox and re.search(rf"held: [^;]*\b{isolation.IPC}\b", sandbox[0]), (sandbox, layer)
    landlock_fs = re.search(rf"held: [^;]*\b{isolation.LANDLOCK_FS}\b", sandbox[0]) is not None
    check_nothing_read_nothing_left(pair, reports[pair.writer], reports[pair.reader], before, landlock_fs)


@pytest.mark.slow  # a batch: its workers and zygotes import Keras (1.5-2 minutes each here)
@pytest.mark.parametrize("jobs", [1, 2], ids=["same worker", "different workers"])
def test_ipc_a_batch_passes_nothing_between_students(tmp_path, jobs):
    ipc_layer_or_skip()
    # One worker grades the writer, then the reader; two grade them at once: the writer then keeps its objects (and
    # its probe) alive while the reader looks for them, and the test checks that their windows overlapped.
    seconds = 0 if jobs == 1 else 25
    pair, before = IpcPair.make(tmp_path / "class", hold_seconds=seconds, poll_seconds=seconds), machine_ipc_objects()
    summary = grade_batch([pair.writer, pair.reader], jobs=jobs, options=GradingOptions(training=False))
    writer, reader = summary.results
    landlock_fs = any(layer["name"] == isolation.LANDLOCK_FS and layer["held"] for layer in writer.sandbox)
    check_nothing_read_nothing_left(pair, writer.probe_output, reader.probe_output, before, landlock_fs)
    assert all(any(layer["name"] == isolation.IPC and layer["held"] for layer in results.sandbox)
               for results in (writer, reader)), (writer.sandbox, reader.sandbox)
    if jobs == 2:
        (written, gone), (looked, done) = window(writer.probe_output, "writer"), window(reader.probe_output, "reader")
        assert min(gone, done) - max(written, looked) > 1, (
            f"the reader looked from {looked} to {done}, the writer's objects lived from {written} to {gone}: "
            "the two probes did not run at the same time, so this run shows nothing")
