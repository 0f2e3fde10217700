"""Run the hidden tests (ordinary pytest tests in grader/checker/hidden_tests) on one submission's probe data.

pytest runs in this trusted process with its own configuration: no ini file, conftest or option from the
submission's folder or the environment can reach it, and its terminal output is discarded. A check's time limit
(`@pytest.mark.timeout`) is pytest-timeout's, but the alarm is set here, so a check that ran out of time is known by
which alarm fired, never by the words of its failure.
"""

import contextlib
import io
import os
import signal
import threading
from pathlib import Path

import pytest

from grader.results import FAILED, PASSED, VISIBLE, CheckResult

HIDDEN_TESTS = Path(__file__).resolve().parent / "hidden_tests"
CRASH_MESSAGE = "The grader could not finish this check: {error}"
TIMEOUT_MESSAGE = "This check ran past its time limit and was stopped."
# pytest's plugins the hidden tests never use. Leaving them out saves about 0.6 s per submission, most of it the full
# garbage collection the unraisable-exception plugin runs at exit over TensorFlow's heap (0.2 s each, twice).
UNUSED_PLUGINS = ("unraisableexception", "threadexception", "faulthandler", "logging", "doctest", "junitxml",
                  "pastebin", "legacypath", "stepwise", "setuponly", "setupplan", "cacheprovider", "randomly")


class _Collector:
    """Turn pytest's reports into CheckResults, one per hidden test."""

    def __init__(self, skip_parts=()):
        self.results = []
        self._items = {}
        self._setup_seconds = {}
        self.skip_parts = frozenset(skip_parts)
        self.timed_out = set()  # nodeids of the checks whose alarm fired
        self.unfinished = set()  # parts with a check that timed out or crashed: no verdict on the submission
        self._cancel = {}       # nodeid -> how to cancel its alarm

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self, item, settings):
        """Set pytest-timeout's alarm (its signal method) and remember the check if it fires."""
        if settings.method != "signal" or threading.current_thread() is not threading.main_thread():
            return None  # pytest-timeout's own thread method: it ends the whole process, no verdict to tell

        def alarm(_signum, _frame):
            self.timed_out.add(item.nodeid)
            pytest.fail(TIMEOUT_MESSAGE, pytrace=False)

        def cancel():
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)

        self._cancel[item.nodeid] = cancel
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, settings.timeout)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_cancel_timer(self, item):
        """Cancel the alarm this collector set for the check, if it set one."""
        cancel = self._cancel.pop(item.nodeid, None)
        if cancel is None:
            return None
        cancel()
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        """Leave out the parts whose verdicts the caller already has (after conftest marked every item's part)."""
        skipped = [item for item in items if item.get_closest_marker("part").args[0] in self.skip_parts]
        if skipped:
            items[:] = [item for item in items if item not in skipped]
            config.hook.pytest_deselected(items=skipped)
        self._items = {item.nodeid: item for item in items}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Keep the sentence a check failed with (pytest.fail), so it reaches the student unwrapped."""
        report = yield
        if call.excinfo is not None and isinstance(call.excinfo.value, pytest.fail.Exception):
            report.check_message = str(call.excinfo.value.msg)
            report.check_cause = getattr(call.excinfo.value, "cause", None)
        return report

    def pytest_runtest_logreport(self, report):
        item = self._items.get(report.nodeid)
        if item is None or report.when == "teardown" or report.skipped:
            return
        if report.when == "setup" and report.passed:
            self._setup_seconds[report.nodeid] = report.duration
            return
        part = item.get_closest_marker("part").args[0]
        points = item.get_closest_marker("points").args[0]
        visibility = item.get_closest_marker("visibility")
        title = item.get_closest_marker("title")
        doc = title.args[0] if title else (item.function.__doc__ or item.originalname).strip().splitlines()[0]
        if report.failed and (report.nodeid in self.timed_out or getattr(report, "check_message", None) is None):
            self.unfinished.add(part)
        output = "" if report.passed else TIMEOUT_MESSAGE if report.nodeid in self.timed_out else _message(report)
        self.results.append(CheckResult(
            name=f"{part}: {doc}", part=part, max_score=points,
            score=points if report.passed else 0, status=PASSED if report.passed else FAILED,
            output=output, cause="" if report.passed else getattr(report, "check_cause", None) or output,
            visibility=visibility.args[0] if visibility else VISIBLE,
            seconds=round(self._setup_seconds.pop(report.nodeid, 0.0) + report.duration, 3),
            bonus=item.get_closest_marker("bonus") is not None))


def _message(report):
    """Return the failure's sentence: the check's own message, or a short note for anything unexpected."""
    message = getattr(report, "check_message", None)
    if message is not None:
        return message
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext.strip()
    return CRASH_MESSAGE.format(error=(text.splitlines() or [""])[0][:500])


def collection_errors(printed: str) -> str:
    """Return the first lines pytest printed under ERRORS (why the hidden tests could not be collected), or ""."""
    lines = printed.splitlines()
    start = next((number for number, line in enumerate(lines) if " ERRORS " in line), None)
    if start is None:
        return ""
    said = [line.strip() for line in lines[start + 1:] if line.strip() and not line.startswith(("___", "===", "!!!"))]
    return " ".join(said[:3])[:1000]


def run_hidden_tests(session, *, tests_dir=HIDDEN_TESTS, skip_parts=(), unfinished=None):
    """Return the CheckResults of every hidden test on the session's submission, but those of skip_parts.

    unfinished: a set that receives the parts with a check that timed out or crashed (no verdict to keep).
    """
    collector = _Collector(skip_parts)
    if unfinished is not None:
        collector.unfinished = unfinished
    args = [str(tests_dir), "-c", os.devnull, "--rootdir", str(tests_dir), "-q", "-W", "ignore"]
    args += [option for plugin in UNUSED_PLUGINS for option in ("-p", f"no:{plugin}")]
    saved = os.environ.pop("PYTEST_ADDOPTS", None)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            code = pytest.main(args, plugins=[session, collector])
    finally:
        if saved is not None:
            os.environ["PYTEST_ADDOPTS"] = saved
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        said = collection_errors(printed.getvalue())
        raise RuntimeError(f"The hidden tests could not run (pytest exit code {int(code)})"
                           + (f": {said}" if said else "."))
    return collector.results
