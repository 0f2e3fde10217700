"""Visible tests for the bonus filters.py, on a small model built here (not on your build_cnn)."""

import lesson_checks
import pytest


@pytest.fixture(scope="module")
def small_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape=lesson_checks.input_shape())
    x = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.05)], name="augmentation")(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    outputs = layers.Dense(2)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_first_layer_filters_are_normalised_per_filter(student, small_model):
    got = student("filters").first_layer_filters(small_model)
    problems = lesson_checks.check_filters(got, small_model, "first_layer_filters(model)")
    assert not problems, "\n".join(problems)


def test_feature_maps_use_training_false(student, small_model):
    images = lesson_checks.random_batch(size=2)
    got = student("filters").feature_maps(small_model, images)
    problems = lesson_checks.check_feature_maps(got, small_model, images, "feature_maps(model, images)")
    assert not problems, "\n".join(problems)
