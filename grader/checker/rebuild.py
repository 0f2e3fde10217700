"""Rebuild a student's model from its config, with built-in Keras layers only.

The config came from an untrusted process, so it is validated before Keras sees it: a Lambda layer, a
custom layer or a subclassed model would mean running student code inside the checker.
"""

import json

MAX_CONFIG_CHARS = 2_000_000
FORBIDDEN_CLASSES = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
LAMBDA_MESSAGE = ("{call} returned a model with a {kind} layer. The grader rebuilds models from built-in Keras "
                  "layers only and never runs code from a submission; use built-in layers (e.g. layers.ReLU()).")
CUSTOM_MESSAGE = ("{call} returned a model that uses {kind} from {module!r}, which is not a built-in Keras class. "
                  "The grader can only check Functional or Sequential models made of Keras layers.")


class ConfigRejected(Exception):
    """The config cannot be rebuilt safely; the message says why in plain words."""


def validate_config(text, call):
    """Return the parsed config, or raise ConfigRejected if it names anything but built-in Keras classes."""
    if not isinstance(text, str) or len(text) > MAX_CONFIG_CHARS:
        raise ConfigRejected(f"{call} returned a model whose config could not be read "
                             f"(expected a JSON string of at most {MAX_CONFIG_CHARS:,} characters).")
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ConfigRejected(f"{call} returned a model whose config is not valid JSON ({error}).") from None
    _check_classes(config, call)
    return config


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
