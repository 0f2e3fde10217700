"""Run a real probe through the launcher as the probe's own user, as `grader grade` does when it runs as root.

The kit's interpreter on a developer machine often lives where no other user may enter (pyenv under /root, mode
700); the user layer then cannot hold and the plan falls back to root without capabilities. These tests give the
probe an interpreter of the same Python version that the probe's user can run (the system's), which reads the same
site-packages, so the launcher's user path runs for real: scratch chowned to that user, RLIMIT_NPROC, and every
process of the uid killed at the end. Where the grader is not root or no such interpreter exists, they skip.
"""

import dataclasses
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from grader.checker.hidden_tests.cases import probe_request
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

print("uid", os.getuid())
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
    uid = isolation.probe_account().pw_uid
    assert held[isolation.NPROC]["held"] and held[isolation.LANDLOCK_FS]["held"] == (layers == "every layer")
    output = result.output
    assert f"uid {uid}\n" in output and uid != 0, output
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
