"""Hidden test: the lesson's trained network, rebuilt by the checker, learns the kit's images in a short run."""

import pytest

from grader.checker.checks.comparison import check_matches_lesson
from grader.checker.checks.expectations import network
from grader.checker.session import expect
from grader.lesson.manifest import TRAINING_BUILDER, TRAINING_HINT, TRAINING_PART

PART = TRAINING_PART
CALL = f"{TRAINING_BUILDER}()"


def why_not_learning(grading):
    """Return the sentence naming how the trained network differs from the lesson's, else the lesson's hint."""
    try:
        differences = check_matches_lesson(grading.model(TRAINING_BUILDER), CALL, TRAINING_BUILDER)
    except pytest.fail.Exception:
        differences = []
    if differences:
        return "Your network differs from the lesson's: " + differences[0].removeprefix(f"Called {CALL}. ")
    return TRAINING_HINT


@pytest.mark.timeout(300)
def test_learns_the_synthetic_shapes(grading):
    """held-out accuracy above the calibrated threshold after a short training run"""
    if not grading.training:
        pytest.skip("training check turned off")
    outcome = grading.training_outcome()
    grading.save_training_pictures(outcome)
    if not outcome.passed:
        chance = 1 / network(TRAINING_BUILDER)["outputs"]
        expect([f"Trained {CALL} briefly on the kit's {outcome.dataset} images: held-out accuracy "
                f"{outcome.accuracy:.1%}, but a correct network reaches at least {outcome.threshold:.1%} "
                f"(chance is {chance:.0%}). {why_not_learning(grading)}"])
