"""Data augmentation as layers inside the model.

These layers are active only when the model is called with training=True (which model.fit does);
at evaluation and inference they are the identity. Choose augmentations that keep the label:
horizontal flips are safe for CIFAR-10, vertical flips are not (an upside-down truck is not a truck).
"""

import keras
from keras import layers


def build_augmentation():
    """Return the lesson's augmentation block: a keras.Sequential named "augmentation".

    The block, in this order:
      layers.RandomFlip("horizontal")
      layers.RandomRotation(0.05)   # +/-5 % of a full turn, about +/-18 degrees
      layers.RandomZoom(0.1)

    Returns:
        keras.Sequential with name="augmentation" and zero parameters.
    """
    # TODO: Stack RandomFlip("horizontal"), RandomRotation(0.05), RandomZoom(0.1) in a Sequential named "augmentation".
    raise NotImplementedError('build_augmentation() is not implemented yet. Stack RandomFlip("horizontal"), RandomRotation(0.05), RandomZoom(0.1) in a Sequential named "augmentation".')
