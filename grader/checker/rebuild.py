"""Rebuild a student's model from its config, with built-in Keras layers only.

The config came from an untrusted process, so it is validated before Keras sees it: a Lambda layer, a
custom layer or a subclassed model would mean running student code inside the checker. Its size is
checked first too: parameters, layers and activations are counted from the config, layer by layer, before
any weight is allocated (Keras allocates a layer's weights as soon as it builds it, even a 3 GB Dense).
"""

import functools
import json
import math

from grader.checker.canonical import canonical_model
from grader.protocol import json_depth

MAX_CONFIG_CHARS = 2_000_000
MAX_CONFIG_DEPTH = 40            # far above what model.to_json() writes for a lesson's network
MAX_LAYERS = 200                 # far above a lesson's network (see lesson_size() for the lesson's own)
MAX_PARAMETERS = 5_000_000       # ten times a lesson's network, and more
MAX_ACTIVATION = 2**22           # values of one layer's output for one image
MAX_OPAQUE_WIDTH = 4096          # units or filters of one layer when the graph cannot be followed
WEIGHTLESS_PREFIXES = ("MaxPooling", "AveragePooling", "GlobalAveragePooling", "GlobalMaxPooling", "ZeroPadding",
                       "Cropping", "UpSampling", "SpatialDropout", "Random")
WEIGHTLESS = {"InputLayer", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "GaussianNoise",
              "GaussianDropout", "AlphaDropout", "Flatten", "Reshape", "Permute", "RepeatVector", "Rescaling",
              "Resizing", "CenterCrop", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
              "Concatenate", "Identity", "ActivityRegularization", "Masking"}
FORBIDDEN_CLASSES = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
LAMBDA_MESSAGE = ("{call} returned a model with a {kind} layer. The grader rebuilds models from built-in Keras "
                  "layers only and never runs code from a submission; use built-in layers (e.g. layers.ReLU()).")
CUSTOM_MESSAGE = ("{call} returned a model that uses {kind} from {module!r}, which is not a built-in Keras class. "
                  "The grader can only check Functional or Sequential models made of Keras layers.")


SAME_SHAPE = {"RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
              "Rescaling", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
              "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "BatchNormalization", "LayerNormalization",
              "Identity", "ActivityRegularization"}
TOO_DEEP = ("{call} returned a model whose config nests more than {limit} levels deep; expected a config written "
            "by model.to_json() (the lesson's nest {lesson_depth} levels).")
TOO_LARGE = ("{call} returned a model with {what}; the grader rebuilds models of at most {limit} "
             "(the lesson's largest network has {lesson_parameters:,} parameters and {lesson_layers} layers).")
UNSIZED = ("{call} returned a model with a {kind} layer, whose size the grader cannot work out before building it. "
           "Expected layers such as Conv2D, Dense, BatchNormalization, pooling, dropout and augmentation layers.")


@functools.cache
def lesson_size():
    """Return {lesson_depth, lesson_parameters, lesson_layers} of the lesson's largest reference network."""
    import json

    from grader.checker.reference import expectations

    found = expectations()
    configs = [json.loads(config) for config in found["configs"].values()]
    sizes = [_graph_size(canonical_model(config), [(None, *found["input_shape"])], "the lesson's reference")
             for config in configs]
    parameters, layers, _outputs = max(sizes)
    return {"lesson_depth": max(map(json_depth, configs)), "lesson_parameters": parameters, "lesson_layers": layers}


def _too_deep(call):
    return ConfigRejected(TOO_DEEP.format(call=call, limit=MAX_CONFIG_DEPTH, **lesson_size()))


def _too_large(call, what, limit):
    return ConfigRejected(TOO_LARGE.format(call=call, what=what, limit=limit, **lesson_size()))


class ConfigRejected(Exception):
    """The config cannot be rebuilt safely; the message says why in plain words."""


def validate_config(text, call):
    """Return the parsed config, or raise ConfigRejected if it names anything but built-in Keras classes."""
    if not isinstance(text, str) or len(text) > MAX_CONFIG_CHARS:
        raise ConfigRejected(f"{call} returned a model whose config could not be read "
                             f"(expected a JSON string of at most {MAX_CONFIG_CHARS:,} characters).")
    try:
        config = json.loads(text)
    except RecursionError:
        raise _too_deep(call) from None
    except ValueError as error:
        raise ConfigRejected(f"{call} returned a model whose config is not valid JSON ({error}).") from None
    if json_depth(config) > MAX_CONFIG_DEPTH:
        raise _too_deep(call)
    _check_classes(config, call)
    return config


def check_size(config: dict, call: str, input_shape=(32, 32, 3)) -> None:
    """Raise ConfigRejected if the model would be far larger than the lesson's, counted before any weight exists."""
    try:
        form = canonical_model(config)
    except Exception:  # noqa: BLE001 - not a model config at all: Keras's rebuild says why
        return None
    if "opaque" in form:  # shared layers or unusual calls: no shapes to follow, so bound each layer's width
        return _check_opaque(config, call)
    parameters, layers, _outputs = _graph_size(form, [(None, *input_shape)], call)
    if layers > MAX_LAYERS:
        raise _too_large(call, f"{layers:,} layers", f"{MAX_LAYERS:,} layers")
    if parameters > MAX_PARAMETERS:
        raise _too_large(call, f"{parameters:,} parameters", f"{MAX_PARAMETERS:,} parameters")


def _graph_size(graph, inputs, call):
    """Return (parameters, layers, output shapes) of a canonical graph (grader.checker.canonical) on input shapes."""
    shapes, parameters, layers, fed = [], 0, 0, iter(inputs)
    for op in graph["ops"]:
        layer = op["layer"]
        kind, config = layer.get("class"), layer.get("config") or {}
        given = [shapes[index][position] for index, position in op["inputs"]]
        if kind == "Input":
            batch_shape = config.get("batch_shape") or config.get("batch_input_shape")
            outputs = [tuple(batch_shape) if batch_shape else next(fed, inputs[0])]
        elif kind == "Model":
            count, inner, outputs = _graph_size(layer["graph"], given, call)
            parameters, layers = parameters + count, layers + inner
        else:
            count, outputs = _layer_size(kind, config, given, call)
            parameters, layers = parameters + count, layers + 1
        for shape in outputs:
            if math.prod(size or 1 for size in shape[1:]) > MAX_ACTIVATION:
                raise _too_large(call, f"a {kind} layer of output shape {shape}",
                                 f"{MAX_ACTIVATION:,} values per image in one layer")
        if layers > MAX_LAYERS or parameters > MAX_PARAMETERS:
            return parameters, layers, []  # already too large: check_size says so
        shapes.append(outputs)
    return parameters, layers, [shapes[index][position] for index, position in graph["outputs"]]


def _layer_size(kind, config, given, call):
    """Return (parameters, output shapes) of one layer call, from its config and its input shapes."""
    import keras

    try:
        weighted = _weights(kind, config, given[0][-1] if given and given[0] else None)
    except (KeyError, TypeError, ValueError):
        weighted = None
    if weighted is None and not (kind in WEIGHTLESS or str(kind).startswith(WEIGHTLESS_PREFIXES)):
        raise ConfigRejected(UNSIZED.format(call=call, kind=kind))
    try:
        shape = _quick_shape(kind, config, given)
        if shape is None:  # instantiating a Keras layer costs milliseconds: only for layers the lesson does not use
            layer = getattr(keras.layers, kind).from_config(config)
            shape = layer.compute_output_shape(given[0] if len(given) == 1 else given)
    except Exception as error:  # Keras raises many types for bad configs
        raise ConfigRejected(f"{call} returned a model whose {kind} layer cannot be built on its input "
                             f"{given} ({type(error).__name__}: {str(error)[:300]}).") from None
    shapes = [tuple(shape)] if not shape or not isinstance(shape[0], (tuple, list)) else [tuple(s) for s in shape]
    return weighted or 0, shapes


def _quick_shape(kind, config, given):
    """Return the output shape of the lesson's common layers on a channels-last input, None for any other."""
    if len(given) != 1 or config.get("data_format", "channels_last") != "channels_last":
        return None
    shape = tuple(given[0])
    if kind in SAME_SHAPE:
        return shape
    if kind == "Dense":
        return (*shape[:-1], int(config["units"]))
    if kind == "Flatten":
        return (shape[0], math.prod(shape[1:]))
    if kind.startswith(("GlobalAveragePooling", "GlobalMaxPooling")) and not config.get("keepdims"):
        return (shape[0], shape[-1])
    if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D") and len(shape) == 4:
        window = config.get("kernel_size", config.get("pool_size", 2))
        strides = config.get("strides") or window
        dilation = config.get("dilation_rate", 1) if kind == "Conv2D" else 1
        window, strides, dilation = (_pair(value) for value in (window, strides, dilation))
        spatial = [_window_output(size, (w - 1) * d + 1, s, config.get("padding", "valid"))
                   for size, w, s, d in zip(shape[1:3], window, strides, dilation)]
        return (shape[0], *spatial, int(config["filters"]) if kind == "Conv2D" else shape[3])
    return None


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _window_output(size, window, stride, padding):
    """Return Keras's output size of a sliding window (conv or pool) along one axis."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    if size < window:
        raise ValueError(f"an input of size {size} is smaller than the window {window}")
    return (size - window) // stride + 1


def _weights(kind, config, channels):
    """Return the parameter count of a layer with weights on `channels` input channels; None for other layers."""
    if not isinstance(channels, int):
        channels = 1 if kind not in ("Dense", "EinsumDense") else None
    bias = 1 if config.get("use_bias", True) else 0
    kernel = config.get("kernel_size", 1)
    window = math.prod(kernel) if isinstance(kernel, (list, tuple)) else int(kernel)
    if kind == "Dense" and channels:
        return (channels + bias) * int(config["units"])
    if kind in ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        return window * channels * int(config["filters"]) // int(config.get("groups") or 1) + bias * int(
            config["filters"])
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return (window + bias) * channels * int(config.get("depth_multiplier", 1))
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        inner = channels * int(config.get("depth_multiplier", 1))
        return window * inner + inner * int(config["filters"]) + bias * int(config["filters"])
    if kind in ("BatchNormalization", "LayerNormalization", "GroupNormalization"):
        return 4 * channels
    if kind == "Embedding":
        return int(config["input_dim"]) * int(config["output_dim"])
    return None


def _check_opaque(config, call):
    """Bound the layer count and each layer's units and filters of a config whose graph is not followed."""
    layers, stack = 0, [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            inner = node.get("config")
            if "class_name" in node and isinstance(inner, dict) and "trainable" in inner:
                layers += 1
                for key in ("units", "filters", "input_dim", "output_dim"):
                    if isinstance(inner.get(key), int) and inner[key] > MAX_OPAQUE_WIDTH:
                        raise _too_large(call, f"{key}={inner[key]:,}", f"{MAX_OPAQUE_WIDTH:,} {key}")
            stack.extend(node.values())
    if layers > MAX_LAYERS:
        raise _too_large(call, f"{layers:,} layers", f"{MAX_LAYERS:,} layers")


def _check_classes(node, call):
    if isinstance(node, list):
        for item in node:
            _check_classes(item, call)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("class_name")
    if isinstance(kind, str):
        module = node.get("module")
        if kind in FORBIDDEN_CLASSES:
            raise ConfigRejected(LAMBDA_MESSAGE.format(call=call, kind=kind))
        if module is not None and not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            raise ConfigRejected(CUSTOM_MESSAGE.format(call=call, kind=kind, module=module))
        registered = node.get("registered_name")
        if registered is not None and registered != kind and not str(registered).startswith("keras"):
            raise ConfigRejected(CUSTOM_MESSAGE.format(call=call, kind=registered, module=module))
    for value in node.values():
        _check_classes(value, call)


def rebuild(text, call, input_shape=(32, 32, 3)):
    """Return a fresh keras.Model rebuilt from a validated config; raise ConfigRejected if that fails."""
    import keras
    from keras.src.saving import serialization_lib

    config = validate_config(text, call)
    check_size(config, call, input_shape)
    try:
        model = serialization_lib.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:  # Keras raises many types for bad configs
        raise ConfigRejected(f"{call} returned a model that Keras cannot rebuild from its config "
                             f"({type(error).__name__}: {str(error)[:300]}).") from None
    if not isinstance(model, keras.Model):
        raise ConfigRejected(f"{call} returned a {type(model).__name__}, but a keras.Model was expected.")
    if not model.built:
        try:
            model.build((None,) + tuple(input_shape))
        except Exception as error:
            raise ConfigRejected(f"{call} returned a model that cannot be built on {input_shape} images "
                                 f"({type(error).__name__}: {str(error)[:300]}).") from None
    return model
