"""Deterministic weights for the filters probe, shared by the probe's runner and the checker.

The runner loads this file by path (it cannot import the grader package), so it may use only
numpy and the standard library. The checker imports it to reproduce the exact same weights.
"""

import numpy as np

WEIGHTS_STD = 0.1


def seeded_values(shapes, seed):
    """Return one float32 array per shape, drawn from N(0, WEIGHTS_STD) with numpy's default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, WEIGHTS_STD, tuple(shape)).astype("float32") for shape in shapes]


def set_seeded_weights(model, seed):
    """Assign seeded values to every floating-point variable of model.weights, in that order."""
    variables = [v for v in model.weights if "float" in str(v.dtype)]
    for variable, value in zip(variables, seeded_values([v.shape for v in variables], seed)):
        variable.assign(value.astype(str(variable.dtype)))
    return model
