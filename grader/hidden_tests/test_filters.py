"""Hidden tests for the bonus filters exercise, on the lesson's network with seeded weights."""

from pathlib import Path

import numpy as np

from grader.checker.rebuild import rebuild
from grader.checker.session import expect
from grader.hidden_tests.cases import FILTERS_WEIGHTS_SEED, decode_array, filters_images
from grader.lesson_checks import flat_layers
from grader.probe.weights import set_seeded_weights

PART = "filters"
MODEL_CONFIG = Path(__file__).with_name("filters_model.json")


def reference():
    """Return the seeded lesson network and its first Conv2D, built by the checker."""
    model = set_seeded_weights(rebuild(MODEL_CONFIG.read_text(), "the grader's model"), FILTERS_WEIGHTS_SEED)
    first_conv = next(layer for layer in flat_layers(model) if type(layer).__name__ == "Conv2D")
    return model, first_conv


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
    got = returned_array(grading, "first_layer_filters", call)
    _, first_conv = reference()
    kernel = np.asarray(first_conv.get_weights()[0])
    low = kernel.min(axis=(0, 1, 2), keepdims=True)
    expected = (kernel - low) / (kernel.max(axis=(0, 1, 2), keepdims=True) - low + 1e-8)
    if got.shape != expected.shape:
        expect([f"Called {call} on the lesson's network. It returned shape {got.shape}, but the first Conv2D's kernel "
                f"is {expected.shape} (kh, kw, in, out)."])
    if not np.allclose(got, expected, atol=1e-5):
        expect([f"Called {call} on the lesson's network. The values are not the first Conv2D's kernel normalised "
                f"filter by filter to [0, 1]: (k - min) / (max - min + 1e-8) over axes (0, 1, 2)."])


def test_feature_maps(grading):
    """feature_maps: the first Conv2D's output with training=False"""
    call = "feature_maps(model, images)"
    got = returned_array(grading, "feature_maps", call)
    model, first_conv = reference()
    import keras

    images = filters_images().astype("float32")
    expected = np.asarray(keras.Model(model.inputs[0], first_conv.output)(images, training=False))
    if got.shape != expected.shape:
        expect([f"Called {call} on 2 images. It returned shape {got.shape}, but the first Conv2D gives "
                f"{expected.shape}."])
    if not np.allclose(got, expected, atol=1e-4):
        expect([f"Called {call}. The maps differ from the first Conv2D's output with training=False: without it "
                f"the augmentation layers flip and rotate the probe images."])
