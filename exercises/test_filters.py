"""Visible tests for the bonus filters.py, on a small model built here (not on your build_cnn)."""

import numpy as np
import pytest

import lesson_checks


@pytest.fixture(scope="module")
def small_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape=lesson_checks.INPUT_SHAPE)
    x = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.05)], name="augmentation")(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    outputs = layers.Dense(2)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_first_layer_filters_are_normalised_per_filter(student, small_model):
    filters = student("filters")
    kernel = small_model.layers[3].get_weights()[0]
    low = kernel.min(axis=(0, 1, 2), keepdims=True)
    expected = (kernel - low) / (kernel.max(axis=(0, 1, 2), keepdims=True) - low + 1e-8)
    got = np.asarray(filters.first_layer_filters(small_model))
    assert got.shape == expected.shape, (
        f"Called first_layer_filters(model). It returned shape {got.shape}, but the first Conv2D's kernel has "
        f"shape {expected.shape} (kh, kw, in, out).")
    assert np.allclose(got, expected, atol=1e-6), (
        "Called first_layer_filters(model). The values differ from the first Conv2D's kernel normalised "
        "filter by filter: (k - min) / (max - min + 1e-8) over axes (0, 1, 2).")


def test_feature_maps_use_training_false(student, small_model):
    import keras

    filters = student("filters")
    images = lesson_checks.random_batch(size=2)
    conv = small_model.layers[3]
    expected = np.asarray(keras.Model(small_model.inputs[0], conv.output)(images.astype("float32"), training=False))
    got = np.asarray(filters.feature_maps(small_model, images))
    assert got.shape == expected.shape, (
        f"Called feature_maps(model, images) on {len(images)} images. It returned shape {got.shape}, but the "
        f"first Conv2D gives {expected.shape}.")
    assert np.allclose(got, expected, atol=1e-5), (
        "Called feature_maps(model, images). The maps differ from the first Conv2D's output with training=False: "
        "without it the augmentation layers flip and rotate the probe images.")
