"""A model as the checks see it: its layers in order (nested models flattened), their shapes, counts and
activations, and each layer described as a student would write it."""

import numpy as np

KIND_NAMES = {"conv": "Conv2D", "pool": "MaxPooling2D", "gap": "GlobalAveragePooling2D", "dense": "Dense"}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")

# Keras's random image layers: everything named Random*, and these. Any of them in a model is augmentation.
AUGMENTATION_LAYERS = {"AugMix", "CutMix", "MixUp", "RandAugment", "Solarization"}
POOLS = {"MaxPooling2D": "pool", "AveragePooling2D": "pool"}
HEADS = {"GlobalAveragePooling2D": "gap", "GlobalMaxPooling2D": "gap", "Flatten": "gap"}
ACTIVATION_LAYERS = {"ReLU", "Activation", "LeakyReLU", "ELU", "PReLU", "Softmax"}
LINEAR = {"linear", None}


def flat_layers(model):
    """Return the model's layers in order, descending into nested models (e.g. the augmentation block)."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(flat_layers(layer))
        elif type(layer).__name__ != "InputLayer":
            found.append(layer)
    return found


def trace(model):
    """Return [(layer, output shape with batch axis)] along the model's layers, in order."""
    shape = (None,) + tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    rows = []
    for layer in flat_layers(model):
        shape = tuple(layer.compute_output_shape(shape))
        rows.append((layer, shape))
    return rows


def layer_params(layer):
    """Return the layer's parameter count, computed from its weight shapes."""
    return int(sum(int(np.prod(weight.shape)) for weight in layer.weights))


def total_params(model):
    """Return the model's parameter count, computed from its weight shapes."""
    return int(sum(int(np.prod(weight.shape)) for weight in model.weights))


def activation_name(layer):
    """Return the name of the activation a layer applies ('relu', 'softmax', 'linear'), or None."""
    kind = type(layer).__name__
    if kind == "ReLU":
        return "relu"
    if kind == "Softmax":
        return "softmax"
    if kind in ("LeakyReLU", "ELU", "PReLU"):
        return kind.lower()
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", str(activation))


def stages(model):
    """Return [(kind, layer, shape)] for the layers that shape the network: conv, pool, gap/flatten, dense."""
    kinds = {"Conv2D": "conv", "Dense": "dense", **POOLS, **HEADS}
    return [(kinds[type(layer).__name__], layer, shape) for layer, shape in trace(model)
            if type(layer).__name__ in kinds]


def describe(layer):
    """Return a layer as a student would recognise it: Conv2D(64, 3, padding='same')."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        size = layer.kernel_size[0] if len(set(layer.kernel_size)) == 1 else tuple(layer.kernel_size)
        return f"Conv2D({layer.filters}, {size}, padding={layer.padding!r})"
    if kind == "Dense":
        return f"Dense({layer.units})"
    if kind in POOLS:
        return f"{kind}({layer.pool_size[0]})"
    return kind


# BEGIN GRADER ONLY: what the reference's layers look like as code is recorded for the students' copy.
# Settings that never show in a layer's code: they name it, seed it, or say how Keras stores it.
UNSHOWN_SETTINGS = ("name", "seed", "dtype", "trainable", "data_format")


def _code_value(value):
    if isinstance(value, (list, tuple)) and len(set(value)) == 1 and len(value) in (1, 2, 3):
        value = value[0]
    elif isinstance(value, (list, tuple)) and len(value) == 2 and symmetric_factor(value) is not None:
        value = symmetric_factor(value)  # a symmetric range (-f, f) is written f
    if isinstance(value, float):
        return f"{value:g}"
    return repr(tuple(value) if isinstance(value, list) else value)


def layer_code(layer):
    """Return the code that makes a layer, its defaults left out: RandomFlip('horizontal'), RandomZoom(0.1)."""
    import inspect

    kind = type(layer)
    config = layer.get_config()
    parameters = [parameter for parameter in list(inspect.signature(kind.__init__).parameters.values())[1:]
                  if parameter.kind is parameter.POSITIONAL_OR_KEYWORD and parameter.name in config]
    required = [parameter.name for parameter in parameters if parameter.default is parameter.empty]
    try:
        defaults = kind(**{name: config[name] for name in required}).get_config()
    except Exception:  # a layer Keras cannot make from its required settings alone: show them all
        defaults = {}
    first = [parameters[0].name] if parameters and parameters[0].name not in UNSHOWN_SETTINGS else []
    positional = first + [name for name in required if name not in first]
    shown = [_code_value(config[name]) for name in positional]
    shown += [f"{key}={_code_value(value)}" for key, value in config.items()
              if key not in positional and key not in UNSHOWN_SETTINGS and key in defaults and defaults[key] != value]
    return f"{kind.__name__}({', '.join(shown)})"
# END GRADER ONLY


def is_augmentation(layer):
    """Return whether a layer is one of Keras's random image augmentation layers."""
    kind = type(layer).__name__
    return kind.startswith("Random") or kind in AUGMENTATION_LAYERS


def is_augmentation_kind(kind):
    """Return whether a layer kind (its class name) is one of Keras's random image augmentation layers."""
    return kind.startswith("Random") or kind in AUGMENTATION_LAYERS


def augmentation_layers(model):
    """Return the random augmentation layers of a model or augmentation block, in order."""
    return [layer for layer in flat_layers(model) if is_augmentation(layer)]


def symmetric_factor(value):
    """Return a symmetric factor as one number: 0.05 and (-0.05, 0.05) both give 0.05; else None."""
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and abs(float(value[0]) + float(value[1])) < 1e-9:
            return abs(float(value[1]))
        return None
    return abs(float(value))
