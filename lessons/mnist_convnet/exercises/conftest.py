"""Run the visible tests against your work in this folder (or any folder given with --impl).

`pytest exercises` checks the modules next to this file. The kit runs the same tests against its reference
with `pytest exercises --impl solutions`. A failure shows only the sentence that explains it.
"""

import importlib
import os
import sys
import traceback as tb
from pathlib import Path

import pytest

# TensorFlow's C++ log after start-up stays quiet; the start-up lines themselves are left out of every report below.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
KIT_FILES = {"conftest.py", "lesson_checks.py"}
MESSAGE_CHARS = 400  # Keras's messages can quote whole tensors: the first sentences say what went wrong
IMPL_HELP = "folder holding convnet.py (default: exercises/)"
SAME_ERROR = "fails for the same reason as {first} (one mistake, reported once)"
FIRST_FAILURES = {}  # one error's line -> the test that reported it first


def pytest_addoption(parser):
    """Add --impl to choose which implementation the visible tests check."""
    parser.addoption("--impl", default=os.environ.get("LESSON6_IMPL", str(HERE)), help=IMPL_HELP)


def pytest_configure(config):
    """Check that --impl names a folder."""
    impl = Path(config.getoption("--impl"))
    if not impl.is_dir():
        raise pytest.UsageError(f"--impl must be a folder with the exercise modules. Received: {impl}")


@pytest.fixture(scope="session")
def student(pytestconfig):
    """Return a function that imports one of the student's modules from the chosen implementation folder."""
    impl = Path(pytestconfig.getoption("--impl")).resolve()

    def load(name):
        if sys.path[0] != str(impl):
            sys.path.insert(0, str(impl))
        module = sys.modules.get(name)
        if module is None or Path(module.__file__).resolve().parent != impl:
            sys.modules.pop(name, None)
            if not (impl / f"{name}.py").exists():
                pytest.fail(f"{impl / name}.py is missing: the exercise lives in convnet.py.", pytrace=False)
            module = importlib.import_module(name)
        return module

    return load


def is_kit_file(path):
    """Return whether a file is one of the kit's own here (a visible test, its checks, this conftest)."""
    path = Path(path)
    return path.parent == HERE and (path.name.startswith("test_") or path.name in KIT_FILES)


def one_line(error, traceback_, impl):
    """Return 'Type: message (file.py:line: code)' at the student's deepest frame, else the kit's, with any hint."""
    frames = [frame for frame in tb.extract_tb(traceback_) if Path(frame.filename).resolve().parent in (impl, HERE)]
    students = [frame for frame in frames if not is_kit_file(Path(frame.filename).resolve())]
    text = " ".join(f"{type(error).__name__}: {error}".split()).rstrip(": ")
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS - 3] + "..."
    frame = (students or frames or [None])[-1]
    if frame is not None:
        code = f": {frame.line.strip()}" if frame.line else ""
        owner = "" if students else "the kit's "  # raised by a check, often on a value of an unexpected type
        text += f" ({owner}{Path(frame.filename).name}:{frame.lineno}{code})"
    import lesson_checks  # the kit's hints for errors Keras raises in plain words but without the lesson's

    hint = lesson_checks.exception_hint(text)
    return f"{text} {hint}" if hint else text


def without_tensorflow_startup(sections):
    """Return a report's captured-output sections without TensorFlow's start-up lines, and without emptied ones."""
    import lesson_checks

    kept = [(title, lesson_checks.without_tensorflow_startup(text)) for title, text in sections]
    return [(title, text) for title, text in kept if text.strip() or not title.startswith("Captured")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Show every failure as its message or one line (exception, message, file and line, hint), not a traceback."""
    outcome = yield
    report = outcome.get_result()
    report.sections = without_tensorflow_startup(report.sections)
    if call.excinfo is None or report.passed or report.skipped:
        return
    error = call.excinfo.value
    # The notebook loads this file as a plugin without --impl: the student's code then lives beside it.
    impl = Path(item.config.getoption("--impl", default=None) or HERE).resolve()
    if isinstance(error, NotImplementedError):
        report.longrepr = str(error)   # "conv_output_size() is not implemented yet. Return ..."
    elif isinstance(error, AssertionError):
        report.longrepr = str(error).split("\nassert")[0]
    elif isinstance(error, pytest.fail.Exception):
        report.longrepr = str(error)
    else:
        report.longrepr = one_line(error, call.excinfo.tb, impl)
        first = FIRST_FAILURES.setdefault(report.longrepr, item.nodeid)
        if first != item.nodeid:  # the same error raised in the same place: told once, the others are skipped
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, SAME_ERROR.format(first=first))
            return
    if report.when == "setup":
        # A fixture that calls the student's function failed because of the student's code: that is a failed
        # test of their work, not an error in the test suite, so report it as one.
        report.when = "call"
