"""Visible tests for shape_math.py: the lesson's shape table, parameter table and head sizes."""

import lesson_checks
import pytest

# (function, args, kwargs): Keras's answer to each, and the hints for the usual mistakes, are recorded in
# lesson_checks.py for these calls only.
CASES = [
    ("conv_output_size", (32, 3), {"padding": "valid"}),
    ("conv_output_size", (32, 3), {"padding": "same"}),
    ("conv_output_size", (32, 3), {"strides": 2, "padding": "same"}),
    ("conv_output_size", (32, 5), {}),
    ("pool_output_size", (32,), {}),
    ("pool_output_size", (16,), {}),
    ("pool_output_size", (8,), {}),
    ("pool_output_size", (4,), {}),
    ("conv_params", (3, 3, 32), {}),
    ("conv_params", (3, 32, 32), {}),
    ("conv_params", (3, 32, 64), {}),
    ("conv_params", (3, 64, 64), {}),
    ("conv_params", (3, 64, 128), {}),
    ("conv_params", (3, 128, 256), {}),
    ("dense_params", (128, 10), {}),
    ("dense_params", (256, 10), {}),
    ("head_params", ((4, 4, 128), 10, "gap"), {}),
    ("head_params", ((4, 4, 128), 10, "flatten"), {}),
    ("head_params", ((2, 2, 256), 10, "gap"), {}),
]


@pytest.mark.parametrize("function, args, kwargs", CASES, ids=[lesson_checks.call_repr(*c) for c in CASES])
def test_matches_keras(student, function, args, kwargs):
    returned = getattr(student("shape_math"), function)(*args, **kwargs)
    problems = lesson_checks.check_recorded_answer(function, args, kwargs, returned)
    assert not problems, "\n".join(problems)


def test_gap_head_is_sixteen_times_smaller_than_flatten(student):
    shape_math = student("shape_math")
    gap = shape_math.head_params((4, 4, 128), 10, "gap")
    flatten = shape_math.head_params((4, 4, 128), 10, "flatten")
    assert (gap, flatten) == (1_290, 20_490), (
        f"Called head_params((4, 4, 128), 10, ...). It returned {gap:,} for 'gap' and {flatten:,} for 'flatten', "
        f"but the lesson gives 1,290 and 20,490.")
