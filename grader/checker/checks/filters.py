"""The bonus: first-layer filters and feature maps, compared with what the checker computes itself."""

import numpy as np

from grader.checker.checks.models import flat_layers


def first_conv(model):
    """Return the model's first Conv2D layer (nested models included)."""
    return next(layer for layer in flat_layers(model) if type(layer).__name__ == "Conv2D")


def normalised_filters(kernel):
    """Return a Conv2D kernel with each filter (last axis) scaled to [0, 1] on its own, as the lesson draws them."""
    kernel = np.asarray(kernel)
    low = kernel.min(axis=(0, 1, 2), keepdims=True)
    return (kernel - low) / (kernel.max(axis=(0, 1, 2), keepdims=True) - low + 1e-8)


def check_filters(got, model, call):
    """Return a problem unless got is the model's first Conv2D kernel, normalised filter by filter."""
    expected = normalised_filters(first_conv(model).get_weights()[0])
    return _array_problems(
        got, expected, 1e-5,
        wrong_shape=f"Called {call}. It returned shape {{got}}, but the first Conv2D's kernel has shape "
                    f"{{expected}} (kh, kw, in, out).",
        wrong_values=f"Called {call}. The values differ from the first Conv2D's kernel normalised filter by filter: "
                     f"(k - min) / (max - min + 1e-8) over axes (0, 1, 2).")


def first_conv_outputs(model, images):
    """Return the first Conv2D's output on images with training=False (the augmentation layers pass them through)."""
    import keras

    probe = keras.Model(model.inputs[0], first_conv(model).output)
    return np.asarray(probe(np.asarray(images, dtype="float32"), training=False))


FEATURE_MAPS_RESCALED = ("Called {call}. The maps are the first Conv2D's output on images / 255: your function "
                         "rescaled the images, then the model's own Rescaling(1/255) scaled them again. Pass the raw "
                         "images to the sub-model; the model rescales them itself.")
FEATURE_MAPS_DIFFER = ("Called {call}. The maps differ from the first Conv2D's output on the raw images with "
                       "training=False. Did you call the sub-model with training=False? Without it the augmentation "
                       "layers flip and rotate the probe images.")


def check_feature_maps(got, model, images, call):
    """Return a problem unless got is the first Conv2D's output on images with training=False."""
    expected = first_conv_outputs(model, images)
    problems = _array_problems(
        got, expected, 1e-4,
        wrong_shape=f"Called {call} on {len(images)} images. It returned shape {{got}}, but the first Conv2D gives "
                    f"{{expected}}.",
        wrong_values=FEATURE_MAPS_DIFFER.format(call=call))
    if problems and np.shape(got) == expected.shape:
        twice = first_conv_outputs(model, np.asarray(images, dtype="float32") / 255)
        # The maps of twice-scaled images are small: compare relative to their own size.
        if np.allclose(got, twice, rtol=1e-4, atol=1e-4 * float(np.abs(twice).max())):
            return [FEATURE_MAPS_RESCALED.format(call=call)]
    return problems


def _array_problems(got, expected, atol, *, wrong_shape, wrong_values):
    """Return wrong_shape (with both shapes filled in) or wrong_values if got differs from expected, else []."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return [wrong_shape.format(got=got.shape, expected=expected.shape)]
    if not np.allclose(got, expected, atol=atol):
        return [wrong_values]
    return []
