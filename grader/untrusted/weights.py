"""Deterministic weights for the filters probe, shared by the probe's runner and the checker.

The runner loads this file by path (it cannot import the grader package), so it may use only numpy, the standard
library and the Keras the probe imports anyway. The checker imports it to reproduce the exact same weights.
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


class SeededModel:
    """A model rebuilt from its config with seeded weights, put back before every use (the filters probe's)."""

    def __init__(self, config, seed):
        self.config, self.seed = config, seed
        self.model = self.weights = None

    def fresh(self):
        """Return the model with its seeded weights: built on first use, then undoing what the last caller assigned."""
        if self.model is None:
            import keras

            self.model = set_seeded_weights(keras.models.model_from_json(self.config), self.seed)
            self.weights = self.model.get_weights()
        else:
            self.model.set_weights(self.weights)
        return self.model
