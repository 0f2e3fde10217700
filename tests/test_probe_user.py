"""Run a real probe through the launcher as the probe's own user, as `grader grade` does when it runs as root.

The kit's interpreter on a developer machine often lives where no other user may enter (pyenv under /root, mode
700); the probe then gets a view of what it needs of that folder (grader/sandbox/view.py), and where it cannot, the
plan falls back to root without capabilities. Most tests here give the probe an interpreter of the same Python
version that the probe's user can run anyway (the system's), which reads the same site-packages, so the launcher's
user path runs for real: scratch chowned to that user, RLIMIT_NPROC, and every process of the uid killed at the end.
The last ones make a private folder (mode 700) and grade from there. Where the grader is not root, they skip.
"""

import dataclasses
import importlib.util
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from grader.batch import grade_batch
from grader.checker.hidden_tests.cases import probe_request
from grader.options import GradingOptions
from grader.results import GradingResults
from grader.sandbox import Limits, ProbePolicy, account, isolation, kernel, rules, run_probe
from tests.conftest import NOT_IN_A_CLONE, ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the isolation layers are Linux's")

SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
MAX_PROCESSES = 40
KIT_FILE = ROOT / "points.toml"  # the lesson's points, beside the grader in the kit's folder

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
        limits = Limits(import_seconds=30, total_seconds=60, max_processes=MAX_PROCESSES)
        result = run_probe(submission, probe_request(), ProbePolicy(limits=limits, uid_per_process=True), python=python)
        victim_state = Path(f"/proc/{victim.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        planted_in_etc = etc.exists()
    finally:
        victim.kill()
        victim.wait()
        etc.unlink(missing_ok=True)
    held = {layer["name"]: layer for layer in result.isolation}
    if not held[isolation.USER]["held"]:
        pytest.skip(f"the user layer does not hold here: {held[isolation.USER]['reason']}")
    uid, gid = account.worker_uid(), account.probe_account().pw_gid
    assert held[isolation.NPROC]["held"] and held[isolation.LANDLOCK_FS]["held"] == (layers == "every layer")
    output = result.output
    assert f"uid {uid} gid {gid}\n" in output and uid != 0, output
    assert "WROTE" not in output and "SIGNALLED" not in output, output
    # The kit's file is closed to its user, or not there at all where a view of a private folder hides it.
    assert re.search(rf"blocked: (PermissionError|FileNotFoundError) {re.escape(str(KIT_FILE))}\n", output), output
    assert f"blocked: PermissionError {etc}\n" in output and "blocked: PermissionError signal\n" in output, output
    assert KIT_FILE.read_bytes() == kit_before and not planted_in_etc and victim_state != "T"
    started = int(output.split("started ")[1].split()[0])
    assert "blocked: BlockingIOError fork" in output and started < MAX_PROCESSES, output  # RLIMIT_NPROC
    deadline = time.monotonic() + 5
    while (account.processes_of(uid) or sleepers(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert account.processes_of(uid) == [] and sleepers(marker) == []


def test_an_interpreter_in_a_closed_folder_makes_the_probe_stay_root_without_capabilities(tmp_path):
    # An interpreter whose own folder is closed (no view can show a file whose folder its user may not enter).
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    python = Path(shutil.copy2(probe_python(), closed / SYSTEM_PYTHON.name))
    (tmp_path / "scratch").mkdir()
    with isolation.plan(tmp_path / "scratch", python=python) as plan:
        layers = {layer.name: layer for layer in plan.layers}
    user = account.probe_account().pw_name
    assert layers[isolation.USER] == isolation.Layer(isolation.USER, False, (
        f"user {user} cannot be used: it cannot run the interpreter {python}; "
        f"{isolation.USER_HINT.format(user=user)}; the probe runs as root"))
    assert layers[isolation.CAPABILITIES].held and not layers[isolation.NPROC].held and plan.uid is None


# --- a uid per batch worker ---------------------------------------------------------------------------------


def probe_in_a_worker(submission, per_worker, queue):
    """Run one probe in this (spawned) process as a batch worker does; put (output, import message, user layer)."""
    # Room for two probes' interpreters and TensorFlow threads under one shared uid's RLIMIT_NPROC: this test is about
    # kill_uid, and with the default limit the control's second fork could fail with EAGAIN (seen in CI).
    limits = Limits(import_seconds=30, total_seconds=60, max_processes=512)
    result = run_probe(submission, probe_request(), ProbePolicy(limits=limits, uid_per_process=per_worker),
                       python=SYSTEM_PYTHON)
    [user] = [layer for layer in result.isolation if layer["name"] == isolation.USER]
    queue.put((result.output, result.import_message, user))


@pytest.mark.parametrize("uids", ["a uid per worker", "one shared account"])
def test_one_workers_probe_ending_spares_another_workers_probe(tmp_path, uids):
    probe_python()
    context = multiprocessing.get_context("spawn")
    per_worker = uids == "a uid per worker"
    slow, quick = tmp_path / "slow", tmp_path / "quick"
    # The slow probe sleeps long enough for the quick one to start, import Keras and end even on a loaded machine
    # (6 s was not: at a load of 10 on 2 cores the quick probe ended after the slow one, and the control saw no kill).
    for folder, source in ((slow, "import time\ntime.sleep(20)\nprint('survived')\n"), (quick, "print('quick')\n")):
        folder.mkdir()
        (folder / "shape_math.py").write_text(source)
    queues = {name: context.Queue() for name in ("slow", "quick")}
    slow_worker = context.Process(target=probe_in_a_worker, args=(slow, per_worker, queues["slow"]))
    slow_worker.start()
    slow_uid = account.worker_uid(slow_worker.pid) if per_worker else account.probe_account().pw_uid
    deadline = time.monotonic() + 60
    while not account.processes_of(slow_uid) and slow_worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # until the slow probe's child runs: then the quick probe's end must spare it
    quick_worker = context.Process(target=probe_in_a_worker, args=(quick, per_worker, queues["quick"]))
    quick_worker.start()
    quick_output, quick_message, quick_user = queues["quick"].get(timeout=120)
    slow_output, slow_message, slow_user = queues["slow"].get(timeout=120)
    for worker in (slow_worker, quick_worker):
        worker.join(10)
    if not slow_user["held"]:
        pytest.skip(f"the user layer does not hold here: {slow_user['reason']}")
    if not per_worker:
        # Control: with one account, one probe's kill_uid kills the other's processes. Which one is hit depends on
        # timing: the slow probe (killed, or its runner restarted after the kill), or the quick one during import.
        disrupted = ("killed by signal 9" in slow_message or "[probe restarted after" in slow_output
                     or "killed by signal 9" in quick_message)
        assert slow_user == quick_user and disrupted, (slow_message, slow_output, quick_message, quick_output)
        return
    assert quick_output == "quick\n", (quick_output, quick_message, quick_user)
    assert slow_user["reason"].startswith(f"runs as uid {slow_uid}, a uid of this grading process's own")
    assert quick_user["reason"].startswith(f"runs as uid {account.worker_uid(quick_worker.pid)}")
    assert slow_output == "survived\n" and not slow_message, (slow_message, slow_output)


def test_a_uid_an_account_has_is_never_a_workers_own(tmp_path):
    probe_python()
    (tmp_path / "scratch").mkdir()
    with isolation.plan(tmp_path / "scratch", python=SYSTEM_PYTHON, probe_uid=os.getuid() or 1) as plan:
        [user] = [layer for layer in plan.layers if layer.name == isolation.USER]
    assert plan.uid == account.probe_account().pw_uid, user
    assert "of its own could not be used: it belongs to the account" in user.reason


def uid_reporting_grader(path, options, grading, reports=None, submission=None):
    """Grade nothing: note whether this batch worker's Grader gives its probes a uid of its own, which, and its pid."""
    note = f"{grading.probe_policy.uid_per_process} {account.worker_uid()} {os.getpid()}"
    return GradingResults(submission=submission, tests=[], notes=[note], execution_time=0.0)


def test_every_batch_worker_gives_its_probes_a_uid_of_its_own(tmp_path):
    for name in ("alice.py", "bob.py"):
        (tmp_path / name).write_text("")
    summary = grade_batch(sorted(tmp_path.iterdir()), jobs=2, options=GradingOptions(training=False),
                          grader=uid_reporting_grader)
    notes = [results.notes[0].split() for results in summary.results]
    assert [on for on, _uid, _pid in notes] == ["True", "True"], notes
    assert all(int(uid) == account.WORKER_UID_BASE + int(pid) for _on, uid, pid in notes), notes
    assert len({pid for _on, _uid, pid in notes}) == 2, notes


# --- a kit in a private folder (issue 27) -------------------------------------------------------------------------

PYENV_PYTHONS = f"versions/{sys.version_info.major}.{sys.version_info.minor}.*/bin/python{SYSTEM_PYTHON.name[6:]}"
SCORE_LINE = re.compile(r"^solutions: ([\d.]+) / ([\d.]+) in ", re.MULTILINE)


def base_pythons():
    """Return {name: interpreter} to make venvs from: the system's Python and pyenv's, of this Python's version."""
    found = {"system python": SYSTEM_PYTHON} if SYSTEM_PYTHON.exists() else {}
    pyenv = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")).glob(PYENV_PYTHONS))
    return found | ({"pyenv python": pyenv[-1]} if pyenv else {})


@pytest.fixture(scope="module")
def private_folder():
    """Return a mode-700 folder (like /root or `mktemp -d`) holding a copy of the kit and of its installed packages.

    The packages are this venv's site-packages hard-linked (2.3 GB installed in seconds, not minutes), without the
    kit's own install; each test makes a venv in the copied kit from an interpreter and points its site-packages
    there: everything the probe needs lies inside a folder that no other user may enter, as in a clone in /root.
    """
    if os.geteuid() != 0:
        pytest.skip(f"a folder closed to the probe's user matters only to a grader running as root; uid {os.geteuid()}")
    folder = Path(tempfile.mkdtemp(prefix="lesson6-private-"))
    try:
        assert folder.stat().st_mode & 0o777 == 0o700
        shutil.copytree(ROOT, folder / "kit", ignore=shutil.ignore_patterns(*NOT_IN_A_CLONE), symlinks=True)
        site = Path(importlib.util.find_spec("numpy").origin).parents[1]
        done = subprocess.run(["cp", "-al", str(site), str(folder / "site")], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot hard-link this venv's packages into {folder}: {done.stderr.strip()}")
        for entry in rules.kit_paths(folder / "kit", [folder / "site"])[1:]:  # the kit's install, not the copy
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def private_venv(folder, name):
    """Make a venv in the private kit from the named interpreter, reading the copied packages; return its python."""
    base = base_pythons().get(name)
    if base is None:
        pytest.skip(f"no {name} of Python {sys.version_info.major}.{sys.version_info.minor} on this machine")
    venv = folder / "kit" / f"venv-{name.split()[0]}"
    if not venv.exists():
        subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
        [site] = venv.glob("lib/python*/site-packages")
        site.rmdir()
        site.symlink_to(folder / "site")
    return venv / "bin" / "python"


def views_possible():
    """Return whether a child of this process may have a mount namespace of its own (what a view needs)."""
    return os.geteuid() == 0 and not kernel.in_child(lambda: kernel.unshare(kernel.CLONE_NEWNS) or {}).get("error")


def test_a_venv_in_a_private_folder_runs_the_probe_as_its_user_by_a_view_of_that_folder(tmp_path):
    # The cheap private kit: a venv of this interpreter in a mode-700 folder, reading this venv's packages.
    if os.geteuid() != 0:
        pytest.skip(f"a folder closed to the probe's user matters only to a grader running as root; uid {os.geteuid()}")
    if not views_possible():
        pytest.skip("this machine gives no child a mount namespace of its own (a container without CAP_SYS_ADMIN)")
    private = Path(tempfile.mkdtemp(prefix="lesson6-private-"))
    try:
        assert private.stat().st_mode & 0o777 == 0o700
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(private / "venv")],
                       check=True, capture_output=True)
        python = private / "venv" / "bin" / "python"
        secret = private / "secret.txt"
        secret.write_text("the instructor's")
        submission = tmp_path / "submission"
        submission.mkdir()
        (submission / "shape_math.py").write_text(
            "import os, sys\nprint('uid', os.getuid(), 'python', sys.executable)\n"
            f"print('secret', os.path.exists({str(secret)!r}))\n")
        policy = ProbePolicy(limits=Limits(import_seconds=30, total_seconds=60), uid_per_process=True)
        result = run_probe(submission, probe_request(), policy, python=python)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    user = {layer["name"]: layer for layer in result.isolation}[isolation.USER]
    assert user["held"] and not result.import_message, (user, result.import_message)
    if f"by the interpreter {os.path.realpath(python)}" in user["reason"]:  # a system Python its user may run anyway
        ran = os.path.realpath(python)
    else:  # pyenv's under /root, say: shown to the probe by the view, and run by the venv's own path
        assert "it sees only what it needs of " in user["reason"], user
        # The folders the view shows, all closed to other users: the venv's, and any other (the kit's own clone when
        # it lies in a private folder too, /root for pyenv's Python).
        shown = user["reason"].split("it sees only what it needs of ", 1)[1].split(" (closed to other users)", 1)[0]
        assert str(private) in shown.split(", "), user
        ran = python
    # The instructor's file beside the venv is not there at all for the probe.
    assert f"uid {account.worker_uid()} python {ran}\nsecret False\n" in result.output, result.output


def run_private(folder, python, *args, timeout=600):
    """Run the private kit's python with args in the kit's folder, as an instructor would; return CompletedProcess."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(python), *args], cwd=folder / "kit", capture_output=True, text=True, timeout=timeout,
                          env={**environment, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=False)


@pytest.mark.slow  # a grade (a minute here) per interpreter
@pytest.mark.parametrize("name", ["system python", "pyenv python"])
def test_a_kit_in_a_private_folder_grades_the_reference_and_says_which_layers_held(private_folder, name):
    python = private_venv(private_folder, name)
    done = run_private(private_folder, python, "-m", "grader", "grade", "solutions", "--no-training")
    assert done.returncode == 0, done.stderr[-3000:]  # it crashed in start_runner with PermissionError
    score, max_score = map(float, SCORE_LINE.search(done.stderr).groups())
    assert score >= max_score, done.stdout
    [line] = [line for line in done.stdout.splitlines() if line.startswith("Sandbox layers that held:")]
    held, _, missing = line.removeprefix("Sandbox layers that held: ").partition("; not available: ")
    if not views_possible():
        user = account.probe_account().pw_name
        assert isolation.CAPABILITIES in held.split(", ") and isolation.USER not in held.split(", "), line
        assert f"{isolation.USER_HINT.format(user=user)}; the probe runs as root)" in missing, line
        return
    # The probe runs as its user, by the venv's own python, seeing only what it needs of the private folder.
    assert {isolation.USER, isolation.NPROC} <= set(held.split(", ")), line
    assert isolation.CAPABILITIES not in line, line


# The probe-user tests that run probes as the probe's user from the kit's own files, run from the private kit: the ones
# that failed there ("can't open file ... runner.py: Permission denied"). Left out: the two-worker test (its 20 s
# sleeper costs a minute per interpreter), whose probes read the same files as the first test's, and the tests that
# start no probe or make a private folder of their own.
FROM_THE_PRIVATE_KIT = "runs_as_its_own_user or every_batch_worker or closed_folder"


@pytest.mark.slow  # the probe-user tests, from the private kit (about 15 s per interpreter)
@pytest.mark.parametrize("name", ["system python", "pyenv python"])
def test_the_probe_user_tests_pass_from_a_private_folder(private_folder, name):
    python = private_venv(private_folder, name)
    done = run_private(private_folder, python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
                       "tests/test_probe_user.py", "-k", FROM_THE_PRIVATE_KIT)
    assert done.returncode == 0, done.stdout[-4000:]  # it failed: "can't open file ... runner.py: Permission denied"
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]


def test_a_kit_in_a_private_folder_gives_the_probe_copies_of_the_runners_files(tmp_path, monkeypatch):
    from grader.sandbox import launcher

    python = probe_python()
    closed = tmp_path / "closed"  # pytest's tmp_path is closed to other users too; this one says so
    closed.mkdir(mode=0o700)
    for name in ("RUNNER", "PROTOCOL", "WEIGHTS", "RESCUE"):
        monkeypatch.setattr(launcher, name, Path(shutil.copy2(getattr(launcher, name), closed)))
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "shape_math.py").write_text("import os\nprint('uid', os.getuid(), __file__)\n")
    (tmp_path / "scratch").mkdir()
    with isolation.plan(tmp_path / "scratch", launcher.site_dirs(), python=python,
                        probe_uid=account.worker_uid()) as plan:
        if not plan.held(isolation.USER):  # with the kit's files left out
            pytest.skip(f"the user layer does not hold here: {plan.layers[1].reason}")
    policy = ProbePolicy(limits=Limits(import_seconds=30, total_seconds=60), uid_per_process=True)
    result = run_probe(submission, probe_request(), policy, python=python)
    [user] = [layer for layer in result.isolation if layer["name"] == isolation.USER]
    assert user["held"], user  # the kit's own runner.py in `closed` is out of the probe user's reach
    assert f"uid {account.worker_uid()} " in result.output and not result.import_message, result.output
