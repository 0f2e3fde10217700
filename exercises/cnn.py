"""The lesson's CIFAR-10 CNN and its deeper v2.

Shape trace of build_cnn (lesson table):
  Input                 (32, 32, 3)        0
  Conv2D(32, 3, same)   (32, 32, 32)     896
  Conv2D(32, 3, same)   (32, 32, 32)   9,248
  MaxPooling2D(2)       (16, 16, 32)       0
  Conv2D(64, 3, same)   (16, 16, 64)  18,496
  Conv2D(64, 3, same)   (16, 16, 64)  36,928
  MaxPooling2D(2)       (8, 8, 64)         0
  Conv2D(128, 3, same)  (8, 8, 128)   73,856
  MaxPooling2D(2)       (4, 4, 128)        0
  GlobalAveragePooling2D (128,)            0
  Dense(10)             (10,)          1,290      total 140,714
"""

import keras
from augmentation import build_augmentation
from keras import layers


def build_cnn(num_classes=10):
    """Return the lesson's CNN as a keras.Model (140,714 parameters for 10 classes).

    Input (32, 32, 3) raw pixels -> augmentation block -> Rescaling(1/255) ->
    Conv2D(32)x2 -> MaxPooling2D(2) -> Conv2D(64)x2 -> MaxPooling2D(2) -> Conv2D(128) -> MaxPooling2D(2) ->
    GlobalAveragePooling2D -> Dense(num_classes) logits (no softmax).
    Every Conv2D is 3x3, padding="same", followed by a ReLU.

    Args:
        num_classes: number of output logits (default 10).

    Returns:
        An uncompiled keras.Model.
    """
    # TODO: Build the lesson's network with the Functional API and return keras.Model(inputs, outputs).
    raise NotImplementedError("build_cnn() is not implemented yet. Build the lesson's network with the Functional API and return keras.Model(inputs, outputs).")


def build_cnn_v2(num_classes=10):
    """Return build_cnn with a fourth block: Conv2D(256, 3, same, relu) + MaxPooling2D(2) before GAP.

    Hand math from the lesson: the new pool gives (2, 2, 256); the new conv has
    3*3*128*256 + 256 = 295,168 parameters; the head grows from 1,290 to 256*10 + 10 = 2,570.
    Total for 10 classes: 437,162.

    Args:
        num_classes: number of output logits (default 10).

    Returns:
        An uncompiled keras.Model.
    """
    # TODO: Copy build_cnn; add Conv2D(256, 3, padding="same", activation="relu") + MaxPooling2D(2) before the GAP.
    raise NotImplementedError('build_cnn_v2() is not implemented yet. Copy build_cnn; add Conv2D(256, 3, padding="same", activation="relu") + MaxPooling2D(2) before the GAP.')
