"""The lesson's network, layer by layer: a comparison modulo style."""

import numpy as np

from grader.checker.checks.expectations import network, rescale, rescale_text
from grader.checker.checks.models import (
    LINEAR,
    ORDINALS,
    activation_name,
    flat_layers,
    is_augmentation_kind,
    symmetric_factor,
)
from grader.checker.checks.preconditions import needs_convolutions

# ---------------------------------------------------------------------------------------------
# The lesson's network, layer by layer: a comparison modulo style.
# Both sides are reduced to (layer kind, {setting: value}) with only the settings that change what a layer
# computes or how it trains; names, 3 vs (3, 3), relu inside Conv2D or as a ReLU layer, Functional or
# Sequential, the augmentation block nested or inline all give the same list.
# ---------------------------------------------------------------------------------------------

# What each setting does, for the sentence naming a difference.
SETTING_WORDS = {
    "trainable": "a frozen layer keeps its random initial weights",
    "dilation_rate": "a dilated kernel skips pixels",
    "activation": "the activation changes what the layer outputs",
    "rate": "dropout zeroes that fraction of the features while training",
    "kernel_initializer": "the initial weights change how the network learns",
    "bias_initializer": "the initial biases change how the network learns",
    "kernel_regularizer": "a regularizer adds a penalty on the weights to the loss",
    "bias_regularizer": "a regularizer adds a penalty on the biases to the loss",
    "activity_regularizer": "a regularizer adds a penalty on the outputs to the loss",
    "kernel_constraint": "a constraint changes the weights after every training step",
    "bias_constraint": "a constraint changes the biases after every training step",
    "fill_mode": "it changes the pixels the augmentation fills in",
    "interpolation": "it changes how the augmentation resamples the image",
}

# BEGIN GRADER ONLY: the list of what is style documents the comparison (tests/test_styles.py).
# What the layer-by-layer comparison treats as style: two networks that differ only in these are the same network.
# Each entry is tested in tests/test_styles.py (a network differing from the reference only in it gets no problem).
STYLE = {
    "names": "layer and model names (name=...)",
    "seeds": "the seeds of random layers and initializers (seed=...)",
    "explicit defaults": "a setting written out with its default value (padding='valid' on a pool)",
    "int vs tuple": "kernel_size=3 or (3, 3), pool_size=2 or (2, 2), strides likewise",
    "relu as a layer or an argument": "Conv2D(..., activation='relu') or Conv2D(...) followed by ReLU()",
    "float32 spelled out": "dtype='float32', Keras's default policy",
    "nesting": "the augmentation block as a nested Sequential or its layers inline; Functional or Sequential",
}
# END GRADER ONLY

# The config keys that hold style only (see STYLE); every other key of a layer's config is compared.
STYLE_KEYS = ("name", "seed")
DEFAULT_DTYPE = "float32"
OTHERS = "_others"  # the key of a canonical layer's remaining settings (compared, never shown as code)


def _pair(value):
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return None if value is None else (int(value), int(value))


def _number(value):
    """Return a scalar setting as a float (a one-element array too), else the value unchanged."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return round(float(value), 8)
    if np.size(value) == 1:
        return round(float(np.squeeze(value)), 8)
    return value


def layer_settings(layer):
    """Return (kind, {setting: value}) with the settings of a layer that change what it computes or learns."""
    kind = type(layer).__name__
    config = layer.get_config()
    trainable = bool(layer.trainable)
    if kind == "Conv2D":
        return kind, {"filters": config["filters"], "kernel_size": _pair(config["kernel_size"]),
                      "strides": _pair(config["strides"]), "padding": config["padding"],
                      "dilation_rate": _pair(config["dilation_rate"]), "groups": config.get("groups", 1),
                      "activation": activation_name(layer) or "linear", "use_bias": config["use_bias"],
                      "trainable": trainable}
    if kind == "Dense":
        return kind, {"units": config["units"], "activation": activation_name(layer) or "linear",
                      "use_bias": config["use_bias"], "trainable": trainable}
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        size = _pair(config["pool_size"])
        return kind, {"pool_size": size, "strides": _pair(config["strides"]) or size, "padding": config["padding"]}
    if kind == "Rescaling":
        return kind, {"scale": _number(config["scale"]), "offset": _number(config["offset"])}
    if kind == "RandomFlip":
        return kind, {"mode": config["mode"]}
    if kind == "RandomRotation":
        return kind, {"factor": symmetric_factor(config["factor"])}
    if kind == "RandomZoom":
        height = symmetric_factor(config["height_factor"])
        width = height if config.get("width_factor") is None else symmetric_factor(config["width_factor"])
        return kind, {"height_factor": height, "width_factor": width}
    if kind == "Dropout":
        return kind, {"rate": _number(config["rate"])}
    if kind in ("GlobalAveragePooling2D", "Flatten", "ReLU"):
        return kind, {}
    if kind == "Activation":
        return kind, {"activation": activation_name(layer)}
    return kind, {key: value for key, value in config.items() if key in ("factor", "rate", "activation")}


def dtype_name(dtype):
    """Return the policy name of a layer's dtype entry (a string or a DTypePolicy object)."""
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    return dtype


def _plain(value):
    """Return a config value in a comparable, printable form: an initializer as GlorotUniform(), lists as tuples."""
    if isinstance(value, dict) and "class_name" in value:  # an initializer, regularizer or constraint
        inner = {key: _plain(item) for key, item in (value.get("config") or {}).items()
                 if key not in STYLE_KEYS and item is not None}
        return f"{value['class_name']}({', '.join(f'{key}={item!r}' for key, item in sorted(inner.items()))})"
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_plain(item) for item in value)
    if isinstance(value, float):
        return round(value, 8)
    return value


def other_settings(layer, shown):
    """Return every setting of a layer's config not in shown, style removed (see STYLE): what else is compared."""
    found = {}
    for key, value in layer.get_config().items():
        if key in shown or key in STYLE_KEYS or key == "trainable":
            continue
        if key == "dtype":
            if dtype_name(value) in (DEFAULT_DTYPE, None):
                continue
            value = dtype_name(value)
        found[key] = _plain(value)
    return found


def is_plain_relu(kind, config):
    """Return whether a layer of this kind and config is relu itself: ReLU() with no limit, or Activation("relu").

    The one rule both canonical forms fold by (this comparison's, and grader.checker.canonical's of a model config):
    such a layer right after a linear Conv2D or Dense is what activation="relu" does.
    """
    if kind == "ReLU":
        return config.get("max_value") is None and not config.get("negative_slope") and not config.get("threshold")
    return kind == "Activation" and config.get("activation") == "relu"


def canonical_layers(model):
    """Return [(kind, settings)] of a model, with style removed: a ReLU after a linear Conv2D or Dense folds into it.

    The canonical form of grader.checker.canonical, modulo what else is style here (STYLE: seeds, a second relu, a
    linear Activation); read from the live layers, so that a model Keras cannot serialize is compared too.
    settings[OTHERS] holds the rest of the layer's config (initializers, regularizers, fill modes...), compared too.
    """
    found = []
    for layer in flat_layers(model):
        kind, settings = layer_settings(layer)
        settings[OTHERS] = other_settings(layer, settings)
        relu = is_plain_relu(kind, layer.get_config())
        if relu and found and found[-1][0] in ("Conv2D", "Dense") and found[-1][1]["activation"] in ("linear", "relu"):
            found[-1][1]["activation"] = "relu"  # relu(relu(x)) is relu(x): a second one is style too
            continue
        if kind == "Activation" and settings["activation"] in LINEAR:
            continue
        found.append((kind, settings))
    return found


def setting_differences(name, wanted, settings):
    """Return a sentence per setting of one layer that differs from the lesson's (the shown ones first)."""
    problems = []
    for key, value in wanted.items():
        if key != OTHERS and not same_setting(settings.get(key), value):
            why = SETTING_WORDS.get(key)
            problems.append(f"{name[0].upper() + name[1:]} has {key}={setting_text(settings.get(key))}; the lesson's "
                            f"uses {setting_text(value)}" + (f" ({why})." if why else "."))
    if problems:
        return problems
    want_others, got_others = wanted.get(OTHERS, {}), settings.get(OTHERS, {})
    for key in [*want_others, *[key for key in got_others if key not in want_others]]:
        got, want = got_others.get(key), want_others.get(key)
        if not same_setting(got, want):
            why = SETTING_WORDS.get(key)
            problems.append(f"{name[0].upper() + name[1:]} has {key}={_shown(got)}; the lesson's uses {_shown(want)}"
                            + (f" ({why})." if why else "."))
    return problems


def _shown(value):
    return value if isinstance(value, str) and value.endswith(")") else repr(value)


def same_setting(got, want):
    if isinstance(got, float) and isinstance(want, float):
        return abs(got - want) <= 1e-6 * max(abs(want), 1e-6)
    return got == want


def setting_text(value):
    if isinstance(value, tuple) and len(set(value)) == 1:
        return str(value[0])
    if isinstance(value, float):
        return rescale_text() if rescale() is not None and same_setting(value, rescale()) else f"{value:.6g}"
    return repr(value)


def spec_repr(kind, settings):
    """Return a canonical layer as code a student would write: MaxPooling2D(pool_size=3, strides=2)."""
    shown = ", ".join(f"{key}={setting_text(value)}" for key, value in settings.items() if key != OTHERS)
    return f"{kind}({shown})"


def _ordinal_names(specs):
    """Return a name per layer: 'the first Conv2D', 'the RandomZoom' (a kind that appears once)."""
    kinds = [kind for kind, _ in specs]
    seen = {}
    names = []
    for kind in kinds:
        index = seen.get(kind, 0)
        seen[kind] = index + 1
        names.append(f"the {kind}" if kinds.count(kind) == 1 else
                     f"the {ORDINALS[index] if index < len(ORDINALS) else f'#{index + 1}'} {kind}")
    return names


@needs_convolutions("the layer-by-layer comparison")
def check_matches_lesson(model, call, builder):
    """Return every difference from the lesson's network that changes what it computes or how it trains."""
    return [problem for mistake in layer_mistakes(model, call, builder) for problem in mistake]


def layer_mistakes(model, call, builder):
    """Return the differences from the lesson's network layer by layer, one list of sentences per mistake.

    A mistake is one layer with other settings, one run of layers added, left out or replaced, or a layer moved
    (left out in one place and added in another).
    """
    import difflib

    # The augmentation is judged once, in its own part and by check_augmentation_inside: not layer by layer here.
    want = [(kind, dict(settings)) for kind, settings in network(builder)["layers"] if not is_augmentation_kind(kind)]
    got = [spec for spec in canonical_layers(model) if not is_augmentation_kind(spec[0])]
    got_names = _ordinal_names(got)
    want_names = _ordinal_names(want)
    matcher = difflib.SequenceMatcher(a=[kind for kind, _ in want], b=[kind for kind, _ in got], autojunk=False)
    mistakes, added, lacked = [], {}, {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for (_, wanted), (_, settings), name in zip(want[i1:i2], got[j1:j2], got_names[j1:j2]):
                sentences = setting_differences(name, wanted, settings)
                if sentences:
                    mistakes.append([f"Called {call}. {sentence}" for sentence in sentences])
            continue
        where = f"after {want_names[i1 - 1]}" if i1 else "at the start"
        extra = ", ".join(spec_repr(*spec) for spec in got[j1:j2])
        missing = ", ".join(spec_repr(*spec) for spec in want[i1:i2])
        if tag == "insert":
            mistakes.append([f"Called {call}. Your model has an extra {extra} {where}; the lesson's network has no "
                             f"such layer there."])
            added[extra] = mistakes[-1]
        elif tag == "delete":
            mistakes.append([f"Called {call}. Your model lacks the lesson's {missing} {where}."])
            lacked[missing] = mistakes[-1]
        else:
            mistakes.append([f"Called {call}. {where[0].upper() + where[1:]} your model has {extra} where the "
                             f"lesson's network has {missing}."])
    for spec in [spec for spec in added if spec in lacked]:  # a moved layer: one mistake told in its two sentences
        added[spec].extend(lacked[spec])
        mistakes.remove(lacked[spec])
    return mistakes
