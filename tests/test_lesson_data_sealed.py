"""The lesson data the grader reads stays out of a submission's reach, for the default lesson and for a lesson folder.

The grader reads each lesson's reference, manifest, points, hidden cases and calibration, and its own hidden tests.
A hostile submission tries to open every one of those files from inside the probe and tells the outcome through its
grade: its builders work (and earn their part's points) only if some read succeeded. One `grader batch` per lesson
grades it (`--lesson` chooses the lesson for the whole process). Like tests/test_sandbox_attacks.py, the test runs only
where the layer that stops reads holds on this machine, and is skipped with that layer's reason elsewhere.
"""

import sys
import tempfile
from pathlib import Path

import pytest

from grader.sandbox import Limits, ProbePolicy, isolation
from grader.sandbox.launcher import sandbox_plan
from grader.store import load_results
from tests.conftest import ROOT, SOLUTIONS, run_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the isolation layers are Linux's")

MNIST = ROOT / "lessons" / "mnist_convnet"
GRADER = ROOT / "grader"


def files_in(*paths):
    """Return the files named, and every file (no bytecode) under the folders named, as strings."""
    found = []
    for path in paths:
        found += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != ".pyc")
    return [str(path) for path in found]


# lesson: (its folder, or None for the default; the module its builders live in; its builders; the files it reads)
LESSONS = {
    "default": (None, "cnn.py", ("build_cnn", "build_cnn_v2"),
                files_in(ROOT / "points.toml", ROOT / "hidden_cases.json", ROOT / "lesson.toml",
                         ROOT / "calibration.json", ROOT / "expectations.json", GRADER / "lesson" / "default",
                         GRADER / "checker" / "hidden_tests", SOLUTIONS / "cnn.py")),
    "mnist_convnet": (MNIST, "convnet.py", ("build_convnet",),
                      files_in(MNIST / "solutions", MNIST / "calibration.json", MNIST / "expectations.json",
                               MNIST / "points.toml",
                               MNIST / "lesson.toml", GRADER / "checker" / "hidden_tests")),
}

# Appended to the reference's builder module: every read is tried; if none succeeds, the builders raise.
ATTACK = '''

_LEAKED = []
for _target in {targets!r}:
    try:
        with open(_target, "rb") as _handle:
            _handle.read(1)
        _LEAKED.append(_target)
        print("READ:", _target)
    except OSError as _error:
        print("blocked:", type(_error).__name__)
if not _LEAKED:
{stand_ins}
'''
STAND_IN = '''    def {name}(*args, **kwargs):
        raise RuntimeError("every read of the lesson's data was blocked")
'''


@pytest.fixture(scope="module")
def reads_stopped():
    """Skip unless the layer that stops a probe's reads holds on this machine (its own reason otherwise)."""
    limits = Limits(import_seconds=30, function_seconds=10, total_seconds=90, memory_bytes=3 * 2**30)
    with tempfile.TemporaryDirectory() as folder, sandbox_plan(Path(folder), ProbePolicy(limits=limits)) as plan:
        layer = {found.name: found for found in plan.layers}[isolation.LANDLOCK_FS]
    if not layer.held:
        pytest.skip(f"no layer that stops reads holds on this machine: {isolation.LANDLOCK_FS}: {layer.reason}")


def test_the_targets_are_the_files_the_grader_reads():
    # The attack must aim at real files: every target exists, and each lesson's reference is among them.
    for folder, module, _builders, targets in LESSONS.values():
        assert targets and all(Path(target).is_file() for target in targets)
        assert str((folder or ROOT) / "solutions" / module) in targets


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_a_probe_reads_none_of_the_lesson_data(lesson, reads_stopped, tmp_path):
    folder, module, builders, targets = LESSONS[lesson]
    submission = tmp_path / "class" / "reader"
    reference = (folder or ROOT) / "solutions"
    submission.mkdir(parents=True)
    for path in reference.glob("*.py"):
        (submission / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    stand_ins = "".join(STAND_IN.format(name=name) for name in builders)
    with open(submission / module, "a", encoding="utf-8") as handle:
        handle.write(ATTACK.format(targets=targets, stand_ins=stand_ins))
    lesson_args = ["--lesson", str(folder)] if folder else []
    done = run_python("-m", "grader", "batch", str(tmp_path / "class"), "--no-training", "--no-cache", "--jobs", "1",
                      "--reports", str(tmp_path / "reports"), "--output", str(tmp_path / "grades.csv"), *lesson_args,
                      timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = load_results(tmp_path / "reports")
    assert "READ:" not in results.probe_output, results.probe_output
    assert results.probe_output.count("blocked:") == len(targets), results.probe_output
    earned = {test.part: 0.0 for test in results.tests}
    for test in results.tests:
        earned[test.part] += test.score
    assert earned and all(earned[name] == 0 for name in builders if name in earned), earned
    assert set(builders) & set(earned), earned  # the builders' parts were graded, and earned nothing
