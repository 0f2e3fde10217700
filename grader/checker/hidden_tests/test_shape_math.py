"""Hidden tests for the shape-math functions: the lesson's hidden cases (students never saw them), compared with what
Keras computes. One test per function; its points are `test_<function>` under the function's part in points.toml."""

import functools

from grader.checker.checks.keras_truth import KERAS_TRUTH, check_answer
from grader.checker.checks.shape_math import call_repr
from grader.checker.hidden_tests.cases import hidden_cases, shape_math_cases
from grader.checker.session import expect
from grader.lesson.manifest import SHAPE_MATH

FUNCTIONS = SHAPE_MATH  # conftest runs test_answers once per function
SHOWN = 3  # wrong answers spelled out per test; the rest are counted


@functools.cache
def keras_answers(function):
    """Return what Keras computes for each hidden case of a function (the same for every submission: computed once)."""
    return [KERAS_TRUTH[function](*args, **kwargs) for args, kwargs in shape_math_cases()[function]]


def check_function(grading, function):
    """Fail with the first wrong answers of one shape-math function on its hidden cases."""
    results = grading.require(function).value
    cases = shape_math_cases()[function]
    if not isinstance(results, list) or len(results) != len(cases):
        expect([f"{function}() could not be called on the hidden inputs."])
    problems = []
    for (args, kwargs), result, expected in zip(cases, results, keras_answers(function)):
        if isinstance(result, dict) and "ok" in result:
            problems += check_answer(function, args, kwargs, result["ok"], expected)
        else:
            error = result.get("error") if isinstance(result, dict) else "no answer"
            problems.append(f"Called {call_repr(function, args, kwargs)}. It raised {error}, but Keras gives "
                            f"{expected}.")
    if len(problems) > SHOWN:
        problems = problems[:SHOWN] + [f"... and {len(problems) - SHOWN} more of the {len(cases)} calls were wrong."]
    expect(problems)


def test_answers(grading, function):
    check_function(grading, function)


test_answers.title = lambda function: hidden_cases()[function].get("title") or f"{function} on the hidden cases"
