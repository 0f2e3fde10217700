"""Shape math as Keras computes it, and the usual mistakes' wrong answers: the grader's alone.

The students' copy of the checks (grader.lesson.stubs) leaves this module out: these functions would answer any
shape-math question. Its visible tests read the answers and hints recorded for their own cases instead.
"""

from grader.checker.checks.shape_math import answer_problems


def keras_conv_output_size(n, kernel_size, strides=1, padding="valid"):
    """Return the output size Keras computes for Conv2D on an n x n input."""
    from keras import layers

    conv = layers.Conv2D(1, kernel_size, strides=strides, padding=padding)
    return conv.compute_output_shape((None, n, n, 1))[1]


def keras_pool_output_size(n, pool_size=2, strides=None, padding="valid"):
    """Return the output size Keras computes for MaxPooling2D on an n x n input."""
    from keras import layers

    pool = layers.MaxPooling2D(pool_size, strides=strides, padding=padding)
    return pool.compute_output_shape((None, n, n, 1))[1]


def keras_conv_params(kernel_size, in_channels, filters, use_bias=True):
    """Return the parameter count Keras gives a built Conv2D."""
    from keras import layers

    conv = layers.Conv2D(filters, kernel_size, use_bias=use_bias)
    conv.build((None, max(kernel_size, 8), max(kernel_size, 8), in_channels))
    return conv.count_params()


def keras_dense_params(in_features, units, use_bias=True):
    """Return the parameter count Keras gives a built Dense layer."""
    from keras import layers

    dense = layers.Dense(units, use_bias=use_bias)
    dense.build((None, in_features))
    return dense.count_params()


def keras_head_params(feature_shape, num_classes, pooling):
    """Return the parameter count of GAP or Flatten followed by Dense(num_classes), built by Keras."""
    import keras
    from keras import layers
    from keras.src.backend.common import global_state

    pool = {"gap": layers.GlobalAveragePooling2D(), "flatten": layers.Flatten()}[pooling]
    # Counted without making the weights: a 7x7x512 Flatten head's kernel and its initializer took ~300 MiB, which
    # TensorFlow's oneDNN allocator keeps for the rest of the process. Keras leaves a stateless scope's weights
    # uninitialized in a list of its own, from which they are dropped so that nothing initializes them later.
    with keras.StatelessScope(initialize_variables=False):
        inputs = keras.Input(shape=tuple(feature_shape))
        model = keras.Model(inputs, layers.Dense(num_classes)(pool(inputs)))
    pending = global_state.get_global_attribute("uninitialized_variables") or []
    pending[:] = [variable for variable in pending if not any(variable is weight for weight in model.weights)]
    return model.count_params()


KERAS_TRUTH = {
    "conv_output_size": keras_conv_output_size,
    "pool_output_size": keras_pool_output_size,
    "conv_params": keras_conv_params,
    "dense_params": keras_dense_params,
    "head_params": keras_head_params,
}


ROUNDED_DOWN = " With padding='same' Keras rounds up: ceil(n / s). Did you round down with floor or //?"
SAME_AS_VALID = " With padding='same' the input is padded, so the kernel size does not shrink the map: ceil(n / s)."
VALID_AS_SAME = " With padding='valid' there is no padding, so the kernel shaves k - 1 pixels: floor((n - k) / s) + 1."
STRIDE_IGNORED = " Did you ignore the stride? Divide by s."
NOT_FLOORED = " Did you forget to round down? Valid: floor((n - k) / s) + 1."
POOL_STRIDE_DEFAULT = (" When strides is None, the stride defaults to pool_size (that is why MaxPooling2D(2) halves "
                       "the map). Did you use a stride of 1?")
CONV_BIAS_MISSING = " Did you forget the F biases? A Conv2D has k*k*C_in*F weights plus one bias per filter."
CONV_BIAS_UNWANTED = " With use_bias=False a Conv2D has no biases: k*k*C_in*F weights only."
CONV_KERNEL_NOT_SQUARED = " Did you use k instead of k*k? The kernel is k x k pixels on every input channel."
DENSE_BIAS_MISSING = " Did you forget the biases? A Dense layer adds one bias per unit."
DENSE_BIAS_UNWANTED = " With use_bias=False a Dense layer has no biases: in_features*units weights only."
FLATTEN_AS_GAP = (" Flatten keeps every position, so Dense sees height*width*channels features; did you count only "
                  "the channels?")
GAP_AS_FLATTEN = (" GlobalAveragePooling2D averages each channel over height and width, so Dense sees only `channels` "
                  "features.")
HEAD_BIAS_MISSING = " Did you forget the Dense layer's biases (one per class)?"


def _conv_size_mistakes(n, kernel_size, strides=1, padding="valid"):
    if padding == "same":
        yield n // strides, ROUNDED_DOWN
        yield (n - kernel_size) // strides + 1, SAME_AS_VALID
        yield n, STRIDE_IGNORED
    elif padding == "valid":
        yield -(-n // strides), VALID_AS_SAME  # ceil(n / s) in integers
        yield n - kernel_size + 1, STRIDE_IGNORED
        yield (n - kernel_size) / strides + 1, NOT_FLOORED


def _pool_size_mistakes(n, pool_size=2, strides=None, padding="valid"):
    if strides is None:
        yield (n - pool_size + 1 if padding == "valid" else n), POOL_STRIDE_DEFAULT
    yield from _conv_size_mistakes(n, pool_size, pool_size if strides is None else strides, padding)


def _conv_params_mistakes(kernel_size, in_channels, filters, use_bias=True):
    weights = kernel_size * kernel_size * in_channels * filters
    yield (weights, CONV_BIAS_MISSING) if use_bias else (weights + filters, CONV_BIAS_UNWANTED)
    yield kernel_size * in_channels * filters + (filters if use_bias else 0), CONV_KERNEL_NOT_SQUARED


def _dense_params_mistakes(in_features, units, use_bias=True):
    weights = in_features * units
    yield (weights, DENSE_BIAS_MISSING) if use_bias else (weights + units, DENSE_BIAS_UNWANTED)


def _head_params_mistakes(feature_shape, num_classes, pooling):
    height, width, channels = feature_shape
    if pooling == "flatten":
        yield channels * num_classes + num_classes, FLATTEN_AS_GAP
    if pooling == "gap":
        yield height * width * channels * num_classes + num_classes, GAP_AS_FLATTEN
    features = channels if pooling == "gap" else height * width * channels
    yield features * num_classes, HEAD_BIAS_MISSING


# Each yields (a wrong answer a usual mistake gives, the hint naming that mistake), for the same arguments.
SHAPE_MATH_MISTAKES = {
    "conv_output_size": _conv_size_mistakes,
    "pool_output_size": _pool_size_mistakes,
    "conv_params": _conv_params_mistakes,
    "dense_params": _dense_params_mistakes,
    "head_params": _head_params_mistakes,
}


def usual_mistakes(function, args, kwargs):
    """Return [(wrong answer, hint)] the usual mistakes give for one call, in the order they are tried."""
    found = []
    try:
        for answer, hint in SHAPE_MATH_MISTAKES[function](*args, **kwargs):
            found.append((answer, hint))
    except (TypeError, ValueError, ZeroDivisionError, KeyError):
        pass  # arguments the usual mistakes cannot take: the formula's hint is shown instead
    return found


def check_answer(function, args, kwargs, returned, expected):
    """Return the problem with one shape-math answer, or [] when it equals what Keras gives (any arguments)."""
    return answer_problems(function, args, kwargs, returned, expected, usual_mistakes(function, args, kwargs))
