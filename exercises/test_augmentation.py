"""Visible tests for augmentation.py: the block's layers, and identity at inference."""

import lesson_checks
import pytest

CALL = "build_augmentation()"


@pytest.fixture(scope="module")
def block(student):
    return student("augmentation").build_augmentation()


def test_is_a_sequential_named_augmentation(block):
    import keras

    assert isinstance(block, keras.Sequential) and block.name == "augmentation", (
        f"Called {CALL}. It returned {type(block).__name__} named {getattr(block, 'name', None)!r}, but the lesson "
        f"expects keras.Sequential([...], name='augmentation').")


def test_has_the_lessons_layers(block):
    problems = lesson_checks.check_augmentation_layers(block, CALL)
    assert not problems, "\n".join(problems)


def test_has_no_parameters(block):
    block.build((None,) + lesson_checks.input_shape())
    problems = lesson_checks.check_no_params(block, CALL)
    assert not problems, "\n".join(problems)


def test_is_the_identity_at_inference(block):
    problems = lesson_checks.check_identity_at_inference(block, CALL, lesson_checks.random_batch())
    assert not problems, "\n".join(problems)


def test_changes_images_in_training(block):
    problems = lesson_checks.check_active_in_training(block, CALL, lesson_checks.random_batch())
    assert not problems, "\n".join(problems)
