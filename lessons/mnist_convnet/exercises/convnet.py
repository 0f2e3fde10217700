"""The MNIST convnet of Chollet's "Deep Learning with Python", chapter 8.

Shape trace of build_convnet (Chollet's model.summary()):
  Input                  (28, 28, 1)         0
  Conv2D(32, 3, relu)    (26, 26, 32)      320
  MaxPooling2D(2)        (13, 13, 32)        0
  Conv2D(64, 3, relu)    (11, 11, 64)   18,496
  MaxPooling2D(2)        (5, 5, 64)          0
  Conv2D(128, 3, relu)   (3, 3, 128)    73,856
  Flatten                (1152,)             0
  Dense(10, softmax)     (10,)          11,530      total 104,202
"""

import keras
from keras import layers


def build_convnet(num_classes=10):
    """Return Chollet's MNIST convnet as a keras.Model (104,202 parameters for 10 classes).

    Input (28, 28, 1) -> Conv2D(32) -> MaxPooling2D(2) -> Conv2D(64) -> MaxPooling2D(2) -> Conv2D(128) ->
    Flatten -> Dense(num_classes, softmax). Every Conv2D is 3x3, unpadded ("valid"), with a ReLU.

    Args:
        num_classes: number of classes (default 10).

    Returns:
        An uncompiled keras.Model whose outputs are class probabilities.
    """
    # TODO: Build Chollet's convnet with the Functional API and return keras.Model(inputs, outputs).
    raise NotImplementedError("build_convnet() is not implemented yet. Build Chollet's convnet with the Functional API and return keras.Model(inputs, outputs).")
