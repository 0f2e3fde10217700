"""Shape and parameter arithmetic for Conv2D, MaxPooling2D and the classifier head.

Lesson 6 asks you to do this math in your head before Keras does it for you. Each function
below mirrors what Keras computes, so you can check your table against `model.summary()`.
"""

import math


def conv_output_size(n, kernel_size, strides=1, padding="valid"):
    """Return the output height (or width) of a Conv2D layer on an input of size n.

    Keras semantics, with k = kernel_size and s = strides:
      padding="valid":  o = floor((n - k) / s) + 1      (32, k=3 -> 30)
      padding="same":   o = ceil(n / s)                 (32, k=3 -> 32; 32, s=2 -> 16)

    Args:
        n: input size in pixels (int >= 1).
        kernel_size: kernel size k (int).
        strides: stride s (int, default 1).
        padding: "valid" (default) or "same".

    Returns:
        The output size as an int.
    """
    # TODO: Return floor((n - k) / s) + 1 for padding="valid" and ceil(n / s) for padding="same".
    # BEGIN SOLUTION
    if padding == "same":
        return math.ceil(n / strides)
    if padding == "valid":
        return (n - kernel_size) // strides + 1
    raise ValueError(f"padding must be 'valid' or 'same'. Received: padding={padding!r}")
    # END SOLUTION


def pool_output_size(n, pool_size=2, strides=None, padding="valid"):
    """Return the output height (or width) of a MaxPooling2D layer on an input of size n.

    Pooling follows the same formula as a convolution whose kernel is the pool window.
    The stride defaults to the pool size, so MaxPooling2D(2) halves the map: 32 -> 16 -> 8 -> 4.

    Args:
        n: input size in pixels (int >= 1).
        pool_size: window size (int, default 2).
        strides: stride (int), or None to use pool_size.
        padding: "valid" (default) or "same".

    Returns:
        The output size as an int.
    """
    # TODO: Use pool_size as the stride when strides is None, then apply the conv formula.
    # BEGIN SOLUTION
    if strides is None:
        strides = pool_size
    return conv_output_size(n, pool_size, strides=strides, padding=padding)
    # END SOLUTION


def conv_params(kernel_size, in_channels, filters, use_bias=True):
    """Return the number of parameters of a Conv2D(filters, kernel_size) on in_channels inputs.

    k*k*C_in*F weights, plus F biases when use_bias is True. The lesson's examples:
      conv_params(3, 3, 32)   -> 896      (3*3*3*32 + 32)
      conv_params(3, 128, 256) -> 295168  (the new block of build_cnn_v2)

    Args:
        kernel_size: kernel size k (int, square kernels).
        in_channels: number of input channels C_in.
        filters: number of filters F.
        use_bias: whether the layer has one bias per filter (default True).

    Returns:
        The parameter count as an int.
    """
    # TODO: Return k*k*C_in*F weights plus F biases (no biases when use_bias is False).
    # BEGIN SOLUTION
    return kernel_size * kernel_size * in_channels * filters + (filters if use_bias else 0)
    # END SOLUTION


def dense_params(in_features, units, use_bias=True):
    """Return the number of parameters of a Dense(units) layer on in_features inputs.

    in_features*units weights, plus units biases when use_bias is True:
      dense_params(128, 10) -> 1290

    Args:
        in_features: length of the input vector.
        units: number of output units.
        use_bias: whether the layer has one bias per unit (default True).

    Returns:
        The parameter count as an int.
    """
    # TODO: Return in_features*units weights plus units biases (no biases when use_bias is False).
    # BEGIN SOLUTION
    return in_features * units + (units if use_bias else 0)
    # END SOLUTION


def head_params(feature_shape, num_classes, pooling):
    """Return the parameters of the classifier head on a (height, width, channels) feature map.

    The head is a pooling step followed by Dense(num_classes):
      pooling="gap":     GlobalAveragePooling2D gives a vector of `channels` values.
      pooling="flatten": Flatten gives a vector of height*width*channels values.
    The lesson's numbers on (4, 4, 128) with 10 classes: "gap" -> 1,290, "flatten" -> 20,490.

    Args:
        feature_shape: (height, width, channels) of the last feature map.
        num_classes: number of output classes.
        pooling: "gap" or "flatten".

    Returns:
        The parameter count as an int.
    """
    # TODO: Count the Dense(num_classes) weights on the vector that "gap" or "flatten" produces.
    # BEGIN SOLUTION
    height, width, channels = feature_shape
    if pooling == "gap":
        features = channels
    elif pooling == "flatten":
        features = height * width * channels
    else:
        raise ValueError(f"pooling must be 'gap' or 'flatten'. Received: pooling={pooling!r}")
    return dense_params(features, num_classes)
    # END SOLUTION
