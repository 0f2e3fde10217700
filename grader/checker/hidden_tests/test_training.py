"""Hidden test: build_cnn, rebuilt by the checker, learns the kit's synthetic shapes in a short training run."""

import pytest

from grader.checker.session import expect

PART = "training"


@pytest.mark.timeout(300)
def test_learns_the_synthetic_shapes(grading):
    """held-out accuracy above the calibrated threshold after a short training run"""
    if not grading.training:
        pytest.skip("training check turned off")
    outcome = grading.training_outcome()
    grading.save_training_pictures(outcome)
    if not outcome.passed:
        expect([f"Trained build_cnn() briefly on the kit's {outcome.dataset} images: held-out accuracy "
                f"{outcome.accuracy:.1%}, but a correct network reaches at least {outcome.threshold:.1%} "
                f"(chance is 10%). Networks that do not learn usually lack Rescaling(1/255), have frozen layers, "
                f"or use augmentations that destroy the labels (vertical flips, large rotations)."])
