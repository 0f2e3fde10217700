"""Run a real probe through the launcher as the probe's own user, as `grader grade` does when it runs as root.

The kit's interpreter on a developer machine often lives where no other user may enter (pyenv under /root, mode
700); the user layer then cannot hold and the plan falls back to root without capabilities. These tests give the
probe an interpreter of the same Python version that the probe's user can run (the system's), which reads the same
site-packages, so the launcher's user path runs for real: scratch chowned to that user, RLIMIT_NPROC, and every
process of the uid killed at the end. Where the grader is not root or no such interpreter exists, they skip.
"""

import dataclasses
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from grader.batch import grade_batch
from grader.checker.hidden_tests.cases import probe_request
from grader.options import GradingOptions
from grader.results import GradingResults
from grader.sandbox import Limits, isolation, run_probe
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the isolation layers are Linux's")

SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
MAX_PROCESSES = 40
KIT_FILE = ROOT / "grader" / "checker" / "hidden_tests" / "points.toml"

ATTACK = """
import os, signal, subprocess

def conv_output_size(n, kernel_size, strides=1, padding="valid"):
    return 0

print("uid", os.getuid(), "gid", os.getgid())
for target in ({kit!r}, {etc!r}):
    try:
        with open(target, "a") as handle:
            handle.write("planted")
        print("WROTE", target)
    except OSError as error:
        print("blocked:", type(error).__name__, target)
try:
    os.kill({grader}, 0)
    os.kill({victim}, signal.SIGSTOP)
    print("SIGNALLED")
except OSError as error:
    print("blocked:", type(error).__name__, "signal")
started = 0
for _ in range(50):
    try:  # no token, a session of its own: only the uid still says whose it is
        subprocess.Popen(["sleep", {marker!r}], start_new_session=True, env={{}})
        started += 1
    except OSError as error:
        print("blocked:", type(error).__name__, "fork")
        break
print("started", started)
"""


def probe_python():
    """Return the system's interpreter of this Python version, or skip saying why the user layer cannot be tried."""
    if os.geteuid() != 0:
        pytest.skip(f"the user layer needs a grader running as root; this test runs as uid {os.geteuid()}")
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"no {SYSTEM_PYTHON} that the probe's user could run (this interpreter is {sys.executable})")
    return SYSTEM_PYTHON


def sleepers(marker):
    """Return the pids of the `sleep marker` processes still alive."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("layers", ["every layer", "the user layer alone"])
def test_the_probe_runs_as_its_own_user_and_everything_of_that_uid_dies(tmp_path, monkeypatch, layers):
    python = probe_python()
    # A uid of this test process's own: kill_uid must not reach a probe that another grader on this machine runs
    # as the shared account at the same time (the batch workers' rule; the account itself: see test_deployment).
    monkeypatch.setattr(isolation, "_OWN_UID", True)
    if layers == "the user layer alone":  # Landlock and the network namespace off: the uid must stop it all
        machine = dataclasses.replace(isolation.host(), landlock_abi=0, netns_flags=0, netns_error="left out")
        monkeypatch.setattr(isolation, "host", lambda: machine)
    submission = tmp_path / "submission"
    submission.mkdir()
    etc, marker = Path(f"/etc/lesson6-probe-user-test-{uuid.uuid4().hex}"), f"{uuid.uuid4().int % 10**6 + 10**6}"
    victim = subprocess.Popen(["sleep", "60"])  # stands in for the grader: a stopped pytest would hang the suite
    kit_before = KIT_FILE.read_bytes()
    try:
        (submission / "shape_math.py").write_text(ATTACK.format(kit=str(KIT_FILE), etc=str(etc), grader=os.getpid(),
                                                                victim=victim.pid, marker=marker))
        result = run_probe(submission, probe_request(), python=python,
                           limits=Limits(import_seconds=30, total_seconds=60, max_processes=MAX_PROCESSES))
        victim_state = Path(f"/proc/{victim.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        planted_in_etc = etc.exists()
    finally:
        victim.kill()
        victim.wait()
        etc.unlink(missing_ok=True)
    held = {layer["name"]: layer for layer in result.isolation}
    if not held[isolation.USER]["held"]:
        pytest.skip(f"the user layer does not hold here: {held[isolation.USER]['reason']}")
    uid, gid = isolation.worker_uid(), isolation.probe_account().pw_gid
    assert held[isolation.NPROC]["held"] and held[isolation.LANDLOCK_FS]["held"] == (layers == "every layer")
    output = result.output
    assert f"uid {uid} gid {gid}\n" in output and uid != 0, output
    assert "WROTE" not in output and "SIGNALLED" not in output, output
    assert output.count("blocked: PermissionError") == 3, output  # the kit's file, /etc, the signals
    assert KIT_FILE.read_bytes() == kit_before and not planted_in_etc and victim_state != "T"
    started = int(output.split("started ")[1].split()[0])
    assert "blocked: BlockingIOError fork" in output and started < MAX_PROCESSES, output  # RLIMIT_NPROC
    deadline = time.monotonic() + 5
    while (isolation.processes_of(uid) or sleepers(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert isolation.processes_of(uid) == [] and sleepers(marker) == []


def test_an_interpreter_in_a_closed_folder_makes_the_probe_stay_root_without_capabilities(tmp_path):
    # What happens with the kit's own venv here: its python is pyenv's, under /root (mode 700).
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    python = Path(shutil.copy2(probe_python(), closed / SYSTEM_PYTHON.name))
    (tmp_path / "scratch").mkdir()
    with isolation.plan(tmp_path / "scratch", python=python) as plan:
        layers = {layer.name: layer for layer in plan.layers}
    assert layers[isolation.USER] == isolation.Layer(isolation.USER, False, (
        f"user {isolation.probe_account().pw_name} cannot be used: it cannot run the interpreter {python}; "
        "the probe runs as root"))
    assert layers[isolation.CAPABILITIES].held and not layers[isolation.NPROC].held and plan.uid is None


# --- a uid per batch worker ---------------------------------------------------------------------------------


def probe_in_a_worker(submission, per_worker, queue):
    """Run one probe in this (spawned) process as a batch worker does; put (output, import message, user layer)."""
    isolation.give_probes_a_uid_per_process(per_worker)
    # Room for two probes' interpreters and TensorFlow threads under one shared uid's RLIMIT_NPROC: this test is about
    # kill_uid, and with the default limit the control's second fork could fail with EAGAIN (seen in CI).
    result = run_probe(submission, probe_request(), python=SYSTEM_PYTHON,
                       limits=Limits(import_seconds=30, total_seconds=60, max_processes=512))
    [user] = [layer for layer in result.isolation if layer["name"] == isolation.USER]
    queue.put((result.output, result.import_message, user))


@pytest.mark.parametrize("uids", ["a uid per worker", "one shared account"])
def test_one_workers_probe_ending_spares_another_workers_probe(tmp_path, uids):
    probe_python()
    context = multiprocessing.get_context("spawn")
    per_worker = uids == "a uid per worker"
    slow, quick = tmp_path / "slow", tmp_path / "quick"
    for folder, source in ((slow, "import time\ntime.sleep(6)\nprint('survived')\n"), (quick, "print('quick')\n")):
        folder.mkdir()
        (folder / "shape_math.py").write_text(source)
    queues = {name: context.Queue() for name in ("slow", "quick")}
    slow_worker = context.Process(target=probe_in_a_worker, args=(slow, per_worker, queues["slow"]))
    slow_worker.start()
    slow_uid = isolation.worker_uid(slow_worker.pid) if per_worker else isolation.probe_account().pw_uid
    deadline = time.monotonic() + 60
    while not isolation.processes_of(slow_uid) and slow_worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # until the slow probe's child runs: then the quick probe's end must spare it
    quick_worker = context.Process(target=probe_in_a_worker, args=(quick, per_worker, queues["quick"]))
    quick_worker.start()
    quick_output, _message, quick_user = queues["quick"].get(timeout=120)
    slow_output, slow_message, slow_user = queues["slow"].get(timeout=120)
    for worker in (slow_worker, quick_worker):
        worker.join(10)
    if not slow_user["held"]:
        pytest.skip(f"the user layer does not hold here: {slow_user['reason']}")
    assert quick_output == "quick\n", quick_output
    if not per_worker:
        assert slow_user == quick_user and "killed by signal 9" in slow_message, (slow_message, slow_output)
        return  # control: with one account, the quick probe's kill_uid killed the slow one
    assert slow_user["reason"].startswith(f"runs as uid {slow_uid}, a uid of this grading process's own")
    assert quick_user["reason"].startswith(f"runs as uid {isolation.worker_uid(quick_worker.pid)}")
    assert slow_output == "survived\n" and not slow_message, (slow_message, slow_output)


def test_a_uid_an_account_has_is_never_a_workers_own(tmp_path):
    probe_python()
    (tmp_path / "scratch").mkdir()
    with isolation.plan(tmp_path / "scratch", python=SYSTEM_PYTHON, probe_uid=os.getuid() or 1) as plan:
        [user] = [layer for layer in plan.layers if layer.name == isolation.USER]
    assert plan.uid == isolation.probe_account().pw_uid, user
    assert "of its own could not be used: it belongs to the account" in user.reason


def uid_reporting_grader(path, options, trainer, reports=None, submission=None):
    """Grade nothing: note whether this batch worker gives its probes a uid of its own, which, and its pid."""
    note = f"{isolation.uid_per_process()} {isolation.worker_uid()} {os.getpid()}"
    return GradingResults(submission=submission, tests=[], notes=[note], execution_time=0.0)


def test_every_batch_worker_gives_its_probes_a_uid_of_its_own(tmp_path):
    for name in ("alice.py", "bob.py"):
        (tmp_path / name).write_text("")
    summary = grade_batch(sorted(tmp_path.iterdir()), jobs=2, options=GradingOptions(training=False),
                          grader=uid_reporting_grader)
    notes = [results.notes[0].split() for results in summary.results]
    assert [on for on, _uid, _pid in notes] == ["True", "True"], notes
    assert all(int(uid) == isolation.WORKER_UID_BASE + int(pid) for _on, uid, pid in notes), notes
    assert len({pid for _on, _uid, pid in notes}) == 2 and not isolation.uid_per_process(), notes
