"""The checker's shape-math truth is what Keras computes, without allocating the weights it counts."""

import math

from grader.checker.checks.keras_truth import keras_head_params
from grader.checker.hidden_tests.cases import shape_math_cases


def test_head_params_counts_every_hidden_case_and_leaves_no_weight_to_initialize():
    from keras.src.backend.common import global_state

    def pending():  # variables created but not yet initialized, as Keras lists them (other tests may leave some)
        return {id(variable) for variable in global_state.get_global_attribute("uninitialized_variables") or ()}

    before = pending()
    for (feature_shape, num_classes, pooling), _ in shape_math_cases()["head_params"]:
        features = feature_shape[-1] if pooling == "gap" else math.prod(feature_shape)
        got = keras_head_params(feature_shape, num_classes, pooling)
        assert got == features * num_classes + num_classes, f"{feature_shape}, {num_classes}, {pooling}: got {got}"
    # Weights left in Keras's list would be initialized (~300 MiB for the 7x7x512 Flatten head) by a later scope.
    assert pending() <= before
