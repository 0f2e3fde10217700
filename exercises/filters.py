"""Bonus: look inside the trained network's first layer.

First-layer filters work on raw RGB, so each 3x3x3 kernel can be drawn as a tiny image.
"""

import keras
import numpy as np


def first_layer_filters(model):
    """Return the first Conv2D's kernel, each filter normalised to [0, 1] for display.

    Find the first Conv2D by type, not by index (augmentation and rescaling sit in front of it).
    The kernel has the layout (kernel_h, kernel_w, channels_in, filters): (3, 3, 3, 32) for the lesson's
    network. Normalise each filter i = kernel[:, :, :, i] on its own: (k - min) / (max - min + 1e-8).

    Args:
        model: a built keras.Model containing at least one Conv2D.

    Returns:
        A float numpy array of the kernel's shape, values in [0, 1].
    """
    # TODO: Find the first Conv2D, take its kernel with get_weights()[0] and normalise each filter to [0, 1].
    raise NotImplementedError('first_layer_filters() is not implemented yet. Find the first Conv2D, take its kernel with get_weights()[0] and normalise each filter to [0, 1].')


def feature_maps(model, images):
    """Return the first Conv2D's output on images, computed with training=False.

    Build a sub-model from model.input to the first Conv2D's output and call it with training=False,
    so the augmentation layers leave the probe images alone. Pass the raw images: the model's own
    Rescaling scales them. For the lesson's network and one image the result has shape (1, 32, 32, 32).
    (The lesson writes model.inputs, a list of one tensor: Keras 3 then warns when the sub-model is called
    with one array instead of a list. model.input is that one tensor.)

    Args:
        model: a built Functional keras.Model containing at least one Conv2D.
        images: a batch of raw images, shape (N, 32, 32, 3).

    Returns:
        A numpy array of shape (N, height, width, filters).
    """
    # TODO: Build keras.Model(model.input, first_conv.output) and call it on images with training=False.
    raise NotImplementedError('feature_maps() is not implemented yet. Build keras.Model(model.input, first_conv.output) and call it on images with training=False.')

