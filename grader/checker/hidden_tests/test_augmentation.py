"""Hidden tests for build_augmentation: its layers, its settings, and what it does at inference and in training."""

import numpy as np
import pytest

from grader.checker.checks.augmentation import (
    check_active_in_training,
    check_augmentation_layers,
    check_identity_at_inference,
    check_no_params,
    random_batch,
)
from grader.checker.checks.expectations import augmentation_text, dataset_name
from grader.checker.session import expect

PART = "augmentation"
CALL = "build_augmentation()"


@pytest.fixture
def block(grading):
    return grading.model("build_augmentation")


def test_is_a_sequential_named_augmentation(block):
    """a keras.Sequential named 'augmentation'"""
    import keras

    if not isinstance(block, keras.Sequential) or block.name != "augmentation":
        expect([f"Called {CALL}. It returned a {type(block).__name__} named {block.name!r}; the lesson's block is "
                f"keras.Sequential([...], name='augmentation')."])


def test_has_the_three_layers_with_their_settings(block):
    expect([p for p in check_augmentation_layers(block, CALL) if "vertical" not in p])


test_has_the_three_layers_with_their_settings.__doc__ = augmentation_text()


def test_no_vertical_flips(block):
    expect([p for p in check_augmentation_layers(block, CALL) if "vertical" in p])


test_no_vertical_flips.__doc__ = f"no vertical flips (they destroy {dataset_name()} labels)"


def test_has_no_parameters(block):
    """zero parameters"""
    expect(check_no_params(block, CALL))


def test_identity_at_inference(block):
    """the identity at inference: training=False, predict and evaluate"""
    images = random_batch(seed=11, size=16)
    problems = check_identity_at_inference(block, CALL, images)
    if not problems:
        block.compile(loss="mean_squared_error")
        loss = block.evaluate(images.astype("float32"), images.astype("float32"), verbose=0)
        if not np.isclose(float(np.ravel(loss)[0]), 0.0):
            problems = [f"Called {CALL}, then block.evaluate(images, images). The loss is {loss}, not 0: the images "
                        f"changed, but augmentation must be the identity at inference."]
    expect(problems)


def test_active_in_training(block):
    """active in training: changes images with training=True"""
    expect(check_active_in_training(block, CALL, random_batch(seed=12, size=16)))
