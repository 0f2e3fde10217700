"""A hidden test that runs out of time is known by the alarm that fired, never by the words of its failure; hidden
tests that cannot be collected say why."""

import types

import pytest

from grader.checker.run import CRASH_MESSAGE, TIMEOUT_MESSAGE, run_hidden_tests

HIDDEN_TESTS = '''
import time

import pytest


@pytest.mark.part("training")
@pytest.mark.points(3)
@pytest.mark.timeout(0.5)
def test_runs_out_of_time():
    """a check that runs past its limit"""
    time.sleep(10)


@pytest.mark.part("training")
@pytest.mark.points(1)
@pytest.mark.timeout(0.5)
def test_waits_in_its_fixture(slow_fixture):
    """a check whose fixture runs past the limit"""


@pytest.fixture
def slow_fixture():
    time.sleep(10)


@pytest.mark.part("shape_math")
@pytest.mark.points(1)
def test_fails_with_the_graders_timeout_sentence():
    """a check whose own verdict reads like the grader's time-out note"""
    pytest.fail("This check ran past its time limit and was stopped. (a verdict, worded to mislead)", pytrace=False)


@pytest.mark.part("filters")
@pytest.mark.points(1)
@pytest.mark.timeout(30)
def test_says_timeout_in_its_own_words():
    """a check that fails with words like pytest-timeout's"""
    pytest.fail("Timeout (>300s) from pytest-timeout. The submission's model was too slow to build.", pytrace=False)


@pytest.mark.part("filters")
@pytest.mark.points(1)
def test_raises_with_those_words():
    """a check that crashes with words like pytest-timeout's"""
    raise RuntimeError("Timeout (>1s) from pytest-timeout.")
'''


def test_a_timed_out_check_is_reported_as_such_and_a_failure_worded_like_one_is_not(tmp_path):
    (tmp_path / "test_hidden_timeouts.py").write_text(HIDDEN_TESTS)  # a module name of its own
    unfinished = set()
    results = {result.name: result
               for result in run_hidden_tests(types.SimpleNamespace(), tests_dir=tmp_path, unfinished=unfinished)}
    assert unfinished == {"training", "filters"}  # the alarms and the crash; shape_math's failure is a verdict
    assert results["training: a check that runs past its limit"].output == TIMEOUT_MESSAGE
    assert results["training: a check whose fixture runs past the limit"].output == TIMEOUT_MESSAGE
    assert results["filters: a check that fails with words like pytest-timeout's"].output == (
        "Timeout (>300s) from pytest-timeout. The submission's model was too slow to build.")
    assert results["filters: a check that crashes with words like pytest-timeout's"].output == CRASH_MESSAGE.format(
        error="RuntimeError: Timeout (>1s) from pytest-timeout.")
    assert all(result.score == 0 for result in results.values()) and len(results) == 5


def test_hidden_tests_that_cannot_be_collected_say_why(tmp_path):
    # What a stale build/ put in a wheel once: a second hidden test module whose parametrization clashes.
    (tmp_path / "test_hidden_clash.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('part', [1])\n@pytest.mark.parametrize('part', [2])\n"
        "def test_clash(part):\n    pass\n")
    with pytest.raises(RuntimeError) as raised:
        run_hidden_tests(types.SimpleNamespace(), tests_dir=tmp_path)
    message = str(raised.value)
    assert message.startswith("The hidden tests could not run (pytest exit code 2): ") and "test_clash" in message
    assert "duplicate parametrization of 'part'" in message, message
