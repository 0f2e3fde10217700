"""The inputs the hidden tests send to a submission: cases students never saw in the visible tests."""

import functools

import numpy as np

from grader.protocol import decode_array, encode_array  # noqa: F401 (decode_array: the hidden tests' codec)

# (args, kwargs) per shape-math function: odd sizes, strides 1-3, both paddings, explicit pool strides, bias off.
SHAPE_MATH_CASES = {
    "conv_output_size": [
        [[n, k], {"strides": s, "padding": p}]
        for n, k, s in [(33, 3, 1), (31, 5, 2), (7, 3, 3), (64, 7, 2), (28, 3, 1), (17, 4, 3), (5, 5, 1), (100, 1, 2)]
        for p in ("valid", "same")
    ] + [[[29, 3], {}], [[15, 3, 2], {}], [[9, 2, 2, "same"], {}]],
    "pool_output_size": [
        [[n], {"pool_size": k, "strides": s, "padding": p}]
        for n, k, s in [(15, 2, None), (33, 3, None), (27, 3, 2), (10, 2, 1), (7, 3, 3), (50, 4, None)]
        for p in ("valid", "same")
    ] + [[[31], {}], [[9, 3], {}]],
    "conv_params": [
        [[k, c, f], {"use_bias": b}]
        for k, c, f in [(5, 3, 16), (1, 64, 32), (3, 17, 9), (7, 3, 64), (3, 256, 512)]
        for b in (True, False)
    ] + [[[3, 128, 256], {}]],
    "dense_params": [
        [[i, u], {"use_bias": b}] for i, u in [(2048, 10), (7, 3), (512, 100), (1, 1)] for b in (True, False)
    ] + [[[256, 5], {}]],
    "head_params": [
        [[list(shape), n, pooling], {}]
        for shape, n in [((4, 4, 128), 100), ((2, 2, 256), 10), ((7, 7, 512), 1000), ((3, 5, 8), 2), ((1, 1, 64), 7)]
        for pooling in ("gap", "flatten")
    ],
}

# build_cnn / build_cnn_v2 are also called with this many classes, to check num_classes is respected.
NUM_CLASSES = 7

# The bonus filters functions run on the lesson's network with weights drawn from this seed.
FILTERS_WEIGHTS_SEED = 2024
FILTERS_IMAGES_SEED = 7


def filters_images():
    """Return the two raw images feature_maps() is called on (of the lesson's shape)."""
    from grader.checker.checks.expectations import input_shape

    return np.random.default_rng(FILTERS_IMAGES_SEED).integers(0, 256, size=(2, *input_shape()), dtype=np.uint8)


ZEROS = {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}


@functools.cache
def filters_model_config():
    """Return the lesson's network (the reference's, see grader.checker.reference) as JSON, every initializer Zeros.

    Its weights are drawn from FILTERS_WEIGHTS_SEED right after it is built, so the initializers only cost time, in
    every probe child: zeros are the cheapest to create.
    """
    import json

    from grader.checker.reference import reference_config
    from grader.lesson.manifest import FILTERS_BUILDER

    def zeros(node):
        if isinstance(node, list):
            return [zeros(item) for item in node]
        if not isinstance(node, dict):
            return node
        return {key: ZEROS if key.endswith("_initializer") and isinstance(value, dict) else zeros(value)
                for key, value in node.items()}

    return json.dumps(zeros(json.loads(reference_config(FILTERS_BUILDER))))


@functools.cache
@functools.cache
def substitutes():
    """Return {API function: JSON config of the lesson's model it returns} for the functions others call (CALLS).

    The probe rebuilds these where a student's own cannot be used, so the functions calling it are graded on their
    own. The configs are the reference's (grader.checker.reference), built in this trusted process.
    """
    from grader.checker.reference import reference_config
    from grader.lesson.manifest import CALLS

    called = sorted({target for targets in CALLS.values() for target in targets})
    return {name: reference_config(name) for name in called}


def probe_request():
    """Return what the probe is asked to call: every hidden input, as JSON-able data."""
    return {
        "substitutes": substitutes(),
        "shape_math": SHAPE_MATH_CASES,
        "num_classes": NUM_CLASSES,
        "filters": {
            "model_config": filters_model_config(),
            "weights_seed": FILTERS_WEIGHTS_SEED,
            "images": encode_array(filters_images()),
        },
    }
