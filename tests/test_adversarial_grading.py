"""Hostile and broken submissions, graded end to end: each case asserts the score, the message and no leftovers.

A wrong submission must gain no points by printing, writing or patching anything; a correct one must lose only
the part its misbehaving function grades. The probe-level details are in test_adversarial_probe.py.
"""

import os
import re
import textwrap
import zipfile
from pathlib import Path

import keras  # noqa: F401  (imported before any test changes HOME: Keras keeps its config in ~/.keras)
import pytest

from grader.grade import grade
from grader.lesson.manifest import PARTS
from grader.lesson.stubs import STUB_MODULES, make_stub
from grader.options import GradingOptions
from grader.render.gradebook import csv_row
from grader.render.text import to_text
from grader.sandbox import Limits
from grader.sandbox.processes import process_table
from tests.conftest import SOLUTIONS, leftover_probe_processes

LIMITS = Limits(import_seconds=40, function_seconds=8, total_seconds=90, memory_bytes=3 * 2**30)
SLEEPER = "987654"  # the argument of the `sleep` an escaping submission leaves behind


def one_file(transform):
    """Return the four exercise modules as one source file, each module passed through transform."""
    parts = [transform((SOLUTIONS / name).read_text()) for name in STUB_MODULES]
    return "\n".join(parts).replace("from augmentation import build_augmentation\n", "")


ROOT = Path(__file__).resolve().parents[1]
CORRECT = one_file(lambda source: source)
STUBS = one_file(make_stub)
FULL = {part: "full" for part in PARTS if part != "training"}
ZERO = {part: 0 for part in PARTS if part != "training"}


def losing(*parts):
    """Return the expected scores of a correct submission that loses exactly these parts."""
    return {**FULL, **{part: 0 for part in parts}}


def hostile(base, attack):
    return base + "\n\n" + textwrap.dedent(attack)


CASES = {
    # --- the process ends itself, hangs, or eats memory ---------------------------------------------------
    "sys_exit_during_import": (hostile(CORRECT, "import sys\nsys.exit(0)\n"), ZERO,
                               "exited with status 0 during import"),
    "os_exit_inside_build_cnn": (hostile(CORRECT, """
        import os
        _build_cnn = build_cnn
        def build_cnn(num_classes=10):
            os._exit(0)
        """), losing("build_cnn"), "exited with status 0 in build_cnn"),
    "loop_ignoring_sigalrm_in_build_cnn_v2": (hostile(CORRECT, """
        import signal
        def build_cnn_v2(num_classes=10):
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                pass
        """), losing("build_cnn_v2"), "timed out after 8 s in build_cnn_v2"),
    "hang_during_import": (hostile(CORRECT, "import time\nwhile True:\n    time.sleep(1)\n"), ZERO,
                           f"timed out after {LIMITS.import_seconds:g} s while importing the submission"),
    "memory_bomb_in_build_cnn_v2": (hostile(CORRECT, """
        def build_cnn_v2(num_classes=10):
            hog = []
            while True:
                hog.append(b"x" * (256 * 2**20))
        """), losing("build_cnn_v2"),  # on a loaded machine the 8 s limit can stop it before the memory limit does
        ("memory limit of 3 GiB exceeded in build_cnn_v2", "timed out after 8 s in build_cnn_v2")),
    "stdout_flood": (hostile(CORRECT, "print('x' * 10_000_000)\n"), FULL, "more characters of output not shown"),
    "escaping_background_process": (hostile(CORRECT, f"""
        import os, subprocess
        if os.fork() == 0:
            os.setsid()
            subprocess.Popen(["sleep", "{SLEEPER}"], start_new_session=True)
            os._exit(0)
        """), FULL, None),
    # --- a wrong submission tries to earn points it did not earn ------------------------------------------
    "prints_fake_results": (hostile(STUBS, """
        import json
        print(json.dumps({"score": 100, "max_score": 100, "tests": []}))
        print("Score: 100 / 100")
        """), ZERO, "is not implemented yet"),
    "writes_results_files": (hostile(STUBS, """
        import json, os, tempfile
        fake = json.dumps({"score": 100, "max_score": 100})
        for folder in (os.getcwd(), os.path.expanduser("~"), tempfile.gettempdir()):
            with open(os.path.join(folder, "results.json"), "w") as handle:
                handle.write(fake)
        """), ZERO, "is not implemented yet"),
    "patches_count_params_and_summary": (hostile(CORRECT.replace(
        'x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)\n    x = layers.Conv2D(32',
        'x = layers.Conv2D(48, 3, padding="same", activation="relu")(x)\n    x = layers.Conv2D(32', 1), """
        keras.Model.count_params = lambda self: 140_714
        keras.Model.summary = lambda self, *args, **kwargs: print("Total params: 140,714")
        """), {**losing("build_cnn"), "build_cnn": 19}, "48 filters; the lesson uses 32"),
    "patches_numpy_comparisons": (hostile(CORRECT.replace(
        'RandomFlip("horizontal")', 'RandomFlip("horizontal_and_vertical")'), """
        import numpy
        numpy.array_equal = lambda *args, **kwargs: True
        numpy.allclose = lambda *args, **kwargs: True
        """), {**FULL, "augmentation": 13}, "vertical flips destroy"),  # one mistake, charged where it is
    "patches_pytest_internals": (hostile(STUBS, """
        import pytest, _pytest.runner
        pytest.fail = lambda *args, **kwargs: None
        _pytest.runner.call_and_report = lambda *args, **kwargs: None
        """), ZERO, "is not implemented yet"),
    "subclassed_model_that_lies": (hostile(CORRECT, """
        class Liar(keras.Model):
            def count_params(self):
                return 140_714
            def call(self, inputs):
                return inputs
        def build_cnn(num_classes=10):
            model = Liar()
            model.build((None, 32, 32, 3))
            return model
        """), {**losing("build_cnn")}, "not a built-in Keras class"),
    "lambda_layer_that_would_run_on_rebuild": (hostile(CORRECT, """
        def build_cnn(num_classes=10):
            inputs = keras.Input(shape=(32, 32, 3))
            spy = layers.Lambda(lambda x: (__import__("os").environ.get("LESSON6_MARKER")
                                           and open(__import__("os").environ["LESSON6_MARKER"], "w")) or x)
            outputs = layers.Dense(num_classes)(layers.GlobalAveragePooling2D()(spy(inputs)))
            return keras.Model(inputs, outputs)
        """), losing("build_cnn"), "Lambda layer"),
    "imports_the_kits_solutions": (hostile(STUBS, """
        try:
            from solutions.cnn import build_cnn, build_cnn_v2
        except ImportError as error:
            print("blocked:", error)
        """), ZERO, "is not implemented yet"),
    "reads_the_lesson_s_reference_and_manifest": (hostile(STUBS, f"""
        for path in {[str(ROOT / "grader" / "lesson" / "default" / "solutions" / "augmentation.py"),
                      str(ROOT / "solutions" / "augmentation.py")]!r}:
            try:
                exec(open(path).read())  # the reference's build_augmentation, if the probe could read it
            except Exception as error:
                print("blocked:", error)
        for path in {[str(ROOT / "lesson.toml"), str(ROOT / "grader" / "lesson" / "default" / "lesson.toml")]!r}:
            try:
                print(open(path).read()[:40])
            except Exception as error:
                print("blocked:", error)
        """), ZERO, "is not implemented yet"),
    # --- broken files -------------------------------------------------------------------------------------
    "syntax_error": ("def build_cnn(:\n    pass\n", ZERO, "SyntaxError"),
    "non_utf8_source": (b"# caf\xe9\ndef build_cnn():\n    return 1\n", ZERO,
                        "It returned int, expected a keras.Model."),
    "empty_file": ("", ZERO, "does not define"),
}


def leftover_processes():
    """Return live probe processes below this test process, and any escaped sleeper anywhere."""
    table = process_table()
    return leftover_probe_processes() + [pid for pid in table if _cmdline(pid) == ["sleep", SLEEPER]]


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def assert_scores(results, expected):
    """Check every part's score: 'full' means all its points."""
    scores = results.part_scores()
    for part, want in expected.items():
        got, most = scores[part]
        assert got == (most if want == "full" else want), (part, got, most, to_text(results))


def all_messages(results):
    return "\n".join([test.output for test in results.tests] + results.notes + [results.probe_output])


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Run a grading from an empty working folder with its own HOME, and check nothing is left behind."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    marker = tmp_path / "lambda-ran-in-the-checker"
    monkeypatch.setenv("LESSON6_MARKER", str(marker))
    yield tmp_path
    assert leftover_processes() == []
    assert list(work.iterdir()) == [] and list(home.iterdir()) == []
    assert not marker.exists()


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_submission(case, sandbox):
    source, expected, message = CASES[case]
    path = sandbox / "submission.py"
    path.write_bytes(source if isinstance(source, bytes) else source.encode())
    results = grade(path, GradingOptions(limits=LIMITS, training=False))
    assert_scores(results, expected)
    if message:
        told = all_messages(results)
        assert any(one in told for one in ((message,) if isinstance(message, str) else message)), to_text(results)
    assert not (Path(os.environ.get("TMPDIR", "/tmp")) / "results.json").exists() or case != "writes_results_files"


def test_conftest_and_pytest_ini_in_the_submission_change_nothing(sandbox):
    folder = sandbox / "sub"
    folder.mkdir()
    (folder / "submission.py").write_text(STUBS)
    (folder / "conftest.py").write_text(textwrap.dedent("""
        import pytest
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            outcome.get_result().outcome = "passed"
        """))
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:terminal --co\n")
    results = grade(folder, GradingOptions(limits=LIMITS, training=False))
    assert_scores(results, ZERO)
    assert "is not implemented yet" in all_messages(results)


def test_numpy_py_in_the_submission_does_not_shadow_numpy(sandbox):
    folder = sandbox / "sub"
    folder.mkdir()
    (folder / "submission.py").write_text(CORRECT)
    (folder / "numpy.py").write_text("raise SystemExit('shadowed numpy')\n")
    assert_scores(grade(folder, GradingOptions(limits=LIMITS, training=False)), FULL)


def test_malformed_notebook_gets_zero_with_a_message(sandbox):
    path = sandbox / "alice.ipynb"
    path.write_text("{ not json")
    results = grade(path, GradingOptions(limits=LIMITS, training=False))
    assert_scores(results, ZERO)
    assert re.search(r"notebook", all_messages(results), re.IGNORECASE)


@pytest.mark.parametrize("entry", ["../evil.py", "/tmp/evil.py"])
def test_zip_escaping_its_folder_gets_zero_with_a_message(sandbox, entry):
    path = sandbox / "alice.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("submission.py", CORRECT)
        archive.writestr(entry, "print('escaped')\n")
    results = grade(path, GradingOptions(limits=LIMITS, training=False))
    assert_scores(results, ZERO)
    assert entry in all_messages(results)
    assert not (sandbox.parent / "evil.py").exists()


def test_zip_with_a_symlink_gets_zero_with_a_message(sandbox):
    path = sandbox / "alice.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("submission.py", CORRECT)
        link = zipfile.ZipInfo("cnn.py")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    results = grade(path, GradingOptions(limits=LIMITS, training=False))
    assert_scores(results, ZERO)
    assert "symlink" in all_messages(results).lower() or "link" in all_messages(results).lower()


def test_the_next_submission_is_graded_normally_after_a_hostile_one(sandbox):
    bomb = sandbox / "bomb.py"
    bomb.write_text(hostile(CORRECT, "import os\nos._exit(9)\n"))
    good = sandbox / "good.py"
    good.write_text(CORRECT)
    assert_scores(grade(bomb, GradingOptions(limits=LIMITS, training=False)), ZERO)
    assert_scores(grade(good, GradingOptions(limits=LIMITS, training=False)), FULL)


def test_hangs_and_crashes_are_named_in_the_notes_for_the_gradebook(sandbox):
    path = sandbox / "submission.py"
    path.write_text(CASES["loop_ignoring_sigalrm_in_build_cnn_v2"][0])
    results = grade(path, GradingOptions(limits=LIMITS, training=False))
    assert results.notes == ["build_cnn_v2(): timed out after 8 s in build_cnn_v2"]
    assert csv_row(results)["message"] == "build_cnn_v2(): timed out after 8 s in build_cnn_v2"
