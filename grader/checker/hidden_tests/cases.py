"""The inputs the hidden tests send to a submission: cases students never saw in the visible tests."""

import functools

import numpy as np

from grader.protocol import decode_array, encode_array  # noqa: F401 (decode_array: the hidden tests' codec)


@functools.cache
def hidden_cases():
    """Return the lesson's hidden shape-math data: {function: {"title": ..., "cases": [[args, kwargs], ...]}}.

    Read from the lesson folder's hidden_cases.json; a lesson without shape-math functions needs none.
    """
    import json

    from grader.lesson.manifest import HIDDEN_CASES_FILE, SHAPE_MATH

    if not SHAPE_MATH:
        return {}
    try:
        found = json.loads(HIDDEN_CASES_FILE.read_text(encoding="utf-8"))["shape_math"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"The lesson's hidden shape-math cases are read from {HIDDEN_CASES_FILE}: expected a JSON "
                         f"object with a \"shape_math\" table. Received: {type(error).__name__}: {error}") from None
    missing = [name for name in SHAPE_MATH if name not in found]
    if missing:
        raise ValueError(f"{HIDDEN_CASES_FILE} has no hidden cases for {missing}: expected one entry per shape-math "
                         f"function of the lesson ({', '.join(SHAPE_MATH)}).")
    return {name: found[name] for name in SHAPE_MATH}


def shape_math_cases():
    """Return (args, kwargs) per shape-math function: the calls students never saw in the visible tests."""
    return {name: entry["cases"] for name, entry in hidden_cases().items()}


# The builders that take num_classes are also called with this many classes, to check it is respected.
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


def warm_up_config():
    """Return the network a zygote warms Keras up on: the filters bonus's, else the lesson's first builder's."""
    from grader.checker.reference import reference_config
    from grader.lesson.manifest import BUILDERS, FILTERS_BUILDER, TRAINING_BUILDER

    if FILTERS_BUILDER:
        return filters_model_config()
    return reference_config(TRAINING_BUILDER or BUILDERS[0])


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
    from grader.lesson.manifest import FILTERS_BUILDER

    request = {"substitutes": substitutes(), "shape_math": shape_math_cases(), "num_classes": NUM_CLASSES}
    if FILTERS_BUILDER:  # a lesson without the filters bonus has no network to send
        request["filters"] = {
            "model_config": filters_model_config(),
            "weights_seed": FILTERS_WEIGHTS_SEED,
            "images": encode_array(filters_images()),
        }
    return request
