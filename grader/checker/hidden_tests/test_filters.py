"""Hidden tests for the bonus filters exercise, on the lesson's network with seeded weights."""

import functools

from grader.checker.checks.filters import check_feature_maps, check_filters
from grader.checker.hidden_tests.cases import FILTERS_WEIGHTS_SEED, decode_array, filters_images, filters_model_config
from grader.checker.rebuild import rebuild
from grader.checker.session import expect
from grader.sandbox import set_seeded_weights

PART = "filters"


@functools.cache
def reference():
    """Return the lesson network with seeded weights, built by the checker once per process (checks only read it)."""
    return set_seeded_weights(rebuild(filters_model_config(), "the grader's model"), FILTERS_WEIGHTS_SEED)


def returned_array(grading, name, call):
    """Return the array a filters function returned, or fail with what it returned instead."""
    value = grading.require(name, call).value
    try:
        return decode_array(value["array"])
    except (KeyError, TypeError, ValueError) as error:
        expect([f"Called {call}. It did not return a numeric array ({error})."])


def test_first_layer_filters(grading):
    """first_layer_filters: the first Conv2D kernel (3, 3, 3, 32), each filter scaled to [0, 1]"""
    call = "first_layer_filters(model)"
    expect(check_filters(returned_array(grading, "first_layer_filters", call), reference(), call))


def test_feature_maps(grading):
    """feature_maps: the first Conv2D's output with training=False"""
    call = "feature_maps(model, images)"
    got = returned_array(grading, "feature_maps", call)
    expect(check_feature_maps(got, reference(), filters_images(), call))
