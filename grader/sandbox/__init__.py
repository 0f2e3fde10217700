"""The sandbox: start the untrusted runner beside student code, isolate it, police it, and kill it at the end.

It is also the one door from the trusted side into grader/untrusted/ (tests/test_layout.py): the grader borrows two
of the runner's functions, the same code on both sides by design.
"""

from grader.sandbox.launcher import run_probe
from grader.sandbox.policy import Limits, ProbePolicy

__all__ = ["Limits", "ProbePolicy", "import_keras", "run_probe", "set_seeded_weights"]


def import_keras():
    """Import Keras as the probe's runner does (grader/untrusted/runner.py), for the grader's warm-up."""
    from grader.untrusted.runner import import_keras as runner_import_keras

    runner_import_keras()


def set_seeded_weights(model, seed):
    """Give model the filters probe's seeded weights (grader/untrusted/weights.py), as the runner does."""
    from grader.untrusted.weights import set_seeded_weights as seeded

    return seeded(model, seed)
