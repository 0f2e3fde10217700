"""Hidden tests for the bonus filters exercise, on the lesson's network with seeded weights."""

import functools
import math

from grader.checker.checks.expectations import input_shape, network
from grader.checker.checks.filters import check_feature_maps, check_filters
from grader.checker.hidden_tests.cases import FILTERS_WEIGHTS_SEED, decode_array, filters_images, filters_model_config
from grader.checker.rebuild import rebuild
from grader.checker.session import expect
from grader.lesson.manifest import FILTERS, FILTERS_BUILDER, PART_OF
from grader.sandbox import set_seeded_weights

PART = PART_OF.get(FILTERS[0]) if FILTERS else None  # a lesson without the bonus runs none of these


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
    call = "first_layer_filters(model)"
    expect(check_filters(returned_array(grading, "first_layer_filters", call), reference(), call))


def kernel_shape():
    """Return the shape of the reference's first Conv2D kernel, (k, k, channels in, filters), from its expectations."""
    _kind, shape, params = next(stage for stage in network(FILTERS_BUILDER)["stages"] if stage[0] == "conv")
    channels, filters = input_shape()[-1], shape[-1]
    kernel = math.isqrt((params - filters) // (channels * filters))  # k*k*C*F weights + F biases
    return kernel, kernel, channels, filters


test_first_layer_filters.title = lambda: (f"first_layer_filters: the first Conv2D kernel {kernel_shape()}, each "
                                          f"filter scaled to [0, 1]")


def test_feature_maps(grading):
    """feature_maps: the first Conv2D's output with training=False"""
    call = "feature_maps(model, images)"
    got = returned_array(grading, "feature_maps", call)
    expect(check_feature_maps(got, reference(), filters_images(), call))
