"""Hidden tests for shape_math: many inputs students never saw, compared with what Keras computes."""

import functools

from grader.checker.checks.keras_truth import KERAS_TRUTH, check_answer
from grader.checker.checks.shape_math import call_repr
from grader.checker.hidden_tests.cases import SHAPE_MATH_CASES
from grader.checker.session import expect

PART = "shape_math"
SHOWN = 3  # wrong answers spelled out per test; the rest are counted


@functools.cache
def keras_answers(function):
    """Return what Keras computes for each hidden case of a function (the same for every submission: computed once)."""
    return [KERAS_TRUTH[function](*args, **kwargs) for args, kwargs in SHAPE_MATH_CASES[function]]


def check_function(grading, function):
    """Fail with the first wrong answers of one shape-math function on its hidden cases."""
    results = grading.require(function).value
    cases = SHAPE_MATH_CASES[function]
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


def test_conv_output_size(grading):
    """conv_output_size on odd sizes, strides 1-3 and both paddings"""
    check_function(grading, "conv_output_size")


def test_pool_output_size(grading):
    """pool_output_size with explicit pool sizes, strides and paddings"""
    check_function(grading, "pool_output_size")


def test_conv_params(grading):
    """conv_params on other kernels and channels, with and without bias"""
    check_function(grading, "conv_params")


def test_dense_params(grading):
    """dense_params with and without bias"""
    check_function(grading, "dense_params")


def test_head_params(grading):
    """head_params for GAP and Flatten heads on other feature maps"""
    check_function(grading, "head_params")
