# Generated from the grader's grader/checker/checks/ (grader.lesson.stubs.write_student_files): do not edit.
# The lesson's data it compares with is in lesson_checks.json beside it.
"""The generic checks: each compares a model, a block or a function's answer with the lesson's expectations and
returns a list of problems in plain words (an empty list means the check passed).

Shared by the grader's hidden tests and, through a generated copy, the visible tests in exercises/, so both explain a
mistake in the same words. Expected values come from Keras itself (shape math) or from the lesson's reference.
The copy holds code only, the same for every lesson, and public Keras API only: not keras_truth, which answers shape
math for any arguments, nor what only the grader uses; the lesson's expectations and the visible tests' own answers
are recorded beside it as data, in lesson_checks.json (grader.lesson.stubs).
"""

from pathlib import Path
import functools
import json
import re

import numpy as np


# The students' copy reads the lesson's data from this file beside it, written with it (grader.lesson.stubs): the
# lesson's expectations, and Keras's answers to the visible tests' own shape-math calls. The grader has no such file.
RECORDED_FILE = "lesson_checks.json"


def as_tuples(value):
    """Return JSON data with its lists as tuples, as the checks hold shapes and settings."""
    if isinstance(value, list):
        return tuple(as_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: as_tuples(item) for key, item in value.items()}
    return value


NO_RECORDED_DATA = ("The visible tests compare with the lesson's data, expected at {path}. Received: no such file; "
                    "restore it from the assignment's repository.")


@functools.cache
def recorded():
    """Return the lesson's data recorded beside the students' copy of these checks ({} in the grader, which derives
    it from the reference)."""
    if __name__.startswith("grader."):
        return {}
    path = Path(__file__).with_name(RECORDED_FILE)
    if not path.is_file():
        raise FileNotFoundError(NO_RECORDED_DATA.format(path=path))
    return as_tuples(json.loads(path.read_text(encoding="utf-8")))


def lesson():
    """Return the lesson's expectations: input shape, networks (stages, counts, layers), augmentation, Rescaling."""
    return recorded().get("expectations") or derived()


def network(builder):
    """Return the expectations of one builder's network (stages, counts, layers, outputs)."""
    return lesson()["networks"][builder]


def input_shape():
    """Return the shape of one input image of the lesson's networks, e.g. (32, 32, 3)."""
    return tuple(lesson()["input_shape"])


def rescale():
    """Return the factor of the lesson's Rescaling layer (None if its networks have none)."""
    return lesson()["rescale"]


def dataset_name():
    """Return the name of the lesson's images in messages, e.g. "CIFAR-10"."""
    return lesson()["dataset_name"]


def lesson_augmentation():
    """Return the lesson's augmentation block as [(kind, settings)]."""
    return [(kind, dict(settings)) for kind, settings in lesson()["augmentation"]]


def augmentation_text():
    """Return the lesson's augmentation block as code: RandomFlip('horizontal'), RandomRotation(0.05), ..."""
    return ", ".join(lesson()["augmentation_code"])


def _fraction(value):
    """Return (numerator, denominator) of a factor such as 1/255, or None if it is no simple fraction."""
    from fractions import Fraction

    if value is None:
        return None
    found = Fraction(value).limit_denominator(10_000)
    return (found.numerator, found.denominator) if abs(float(found) - value) <= 1e-9 * max(abs(value), 1) else None


def pixel_range():
    """Return the raw pixels' range the lesson's Rescaling maps to 0-1, e.g. "0-255"."""
    found = _fraction(rescale())
    return f"0-{found[1]}" if found and found[0] == 1 else "raw"


def lesson_rotation():
    """Return the factor of the lesson's RandomRotation, or None if its block has none."""
    return next((settings["factor"] for kind, settings in lesson_augmentation() if kind == "RandomRotation"), None)


def lesson_augmentation_others(kind):
    """Return the settings of the lesson's augmentation layer of this kind beyond its main ones (fill mode...)."""
    return next((dict(others) for (found, _), others in zip(lesson()["augmentation"], lesson()["augmentation_others"])
                 if found == kind), {})


def lesson_layer_code(kind):
    """Return how the lesson writes its augmentation layer of this kind, e.g. "RandomZoom(0.1)"."""
    return next((code for (found, _), code in zip(lesson()["augmentation"], lesson()["augmentation_code"])
                 if found == kind), kind)


def rescale_text(spaced=False):
    """Return the lesson's Rescaling factor as code: "1/255", or "1.0 / 255" when spaced."""
    found = _fraction(rescale())
    if found is None or found[0] != 1:
        return f"{rescale():g}"
    return f"1.0 / {found[1]}" if spaced else f"1/{found[1]}"


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


def recorded_cases():
    """Return {call as call_repr writes it: (Keras's answer, [(wrong answer, hint)])} for the visible tests' own cases.

    Recorded beside the students' copy of these checks when it is made (grader.lesson.stubs); empty in the grader.
    """
    return recorded().get("shape_math_cases", {})


def call_repr(function, args=(), kwargs=None):
    """Return how a call reads in a message: conv_output_size(32, 3, strides=2, padding='same')."""
    parts = [repr(tuple(a) if isinstance(a, list) else a) for a in args]
    parts += [f"{key}={value!r}" for key, value in (kwargs or {}).items()]
    return f"{function}({', '.join(parts)})"


def check_recorded_answer(function, args, kwargs, returned):
    """Return the problem with the answer to one of the visible tests' calls, or [] when it is Keras's."""
    call = call_repr(function, args, kwargs)
    cases = recorded_cases()
    if call not in cases:
        raise KeyError(f"No answer is recorded for {call}: the visible tests hold answers only for their own cases.")
    expected, mistakes = cases[call]
    return answer_problems(function, args, kwargs, returned, expected, mistakes)


def answer_problems(function, args, kwargs, returned, expected, mistakes):
    """Return the problem with one shape-math answer, or [] when it equals what Keras gives.

    mistakes: [(wrong answer, hint)] the usual mistakes give for this call; the first that returned matches is shown.
    """
    call = call_repr(function, args, kwargs)
    if isinstance(returned, bool) or not isinstance(returned, (int, float, np.integer, np.floating)):
        return [f"Called {call}. It returned {returned!r} ({type(returned).__name__}), but Keras gives "
                f"{expected}: return a whole number."]
    if returned != expected:
        return [f"Called {call}. It returned {returned!r}, but Keras gives {expected}."
                f"{likely_mistake(function, returned, expected, mistakes)}"]
    return []


SHAPE_MATH_HINTS = {
    "conv_output_size": " Valid: floor((n - k) / s) + 1; same: ceil(n / s).",
    "pool_output_size": " The stride defaults to pool_size, then the conv formula applies.",
    "conv_params": " A Conv2D has k*k*C_in*F weights plus F biases.",
    "dense_params": " A Dense layer has in_features*units weights plus units biases.",
    "head_params": (" GAP keeps `channels` features, Flatten keeps height*width*channels; then Dense adds a bias "
                    "per class."),
}


def likely_mistake(function, returned, expected, mistakes):
    """Return the hint of the usual mistake that gives `returned`, else the function's formula."""
    for answer, hint in mistakes:
        if answer == returned and answer != expected:
            return hint
    return SHAPE_MATH_HINTS.get(function, "")


NO_CONVOLUTION = ("Called {call}. Your model has no Conv2D layer, so it is not the lesson's CNN: {judged} earns "
                  "nothing until the model is built from the lesson's {convolution} blocks.")
# How the checks at inference begin to tell a block holding more than random layers (augmentation's
# _acts_at_inference): the block's check and both networks' fail for that one reason.
ACTS_AT_INFERENCE = "The augmentation block also holds "
# How a shape-math problem tells Keras's answer; the hint naming the likely mistake follows it (shape_math).
KERAS_GIVES = ", but Keras gives "
NOT_A_MODEL = ("Called {call}. It returned {got}, but the lesson's builders return a keras.Model: end with "
               "return keras.Model(inputs, outputs).")


def lesson_convolution():
    """Return the lesson's first Conv2D as written, its filters left open: Conv2D(..., 3, activation='relu')."""
    for network in lesson()["networks"].values():
        for code in network["layer_code"]:
            if code.startswith("Conv2D("):
                settings = code.removeprefix("Conv2D(").partition(", ")[2]
                return f"Conv2D(..., {settings}" if settings else "Conv2D(...)"
    return "Conv2D(...)"


def no_convolution():
    """Return NO_CONVOLUTION naming the lesson's own convolution, {call} and {judged} left to fill."""
    return NO_CONVOLUTION.replace("{convolution}", lesson_convolution())


def check_has_convolutions(model, call, judged="the network"):
    """Return a problem if the model has no Conv2D layer (or is no model): no network check can judge it then."""
    if not hasattr(model, "layers"):
        return [NOT_A_MODEL.format(call=call, got=type(model).__name__)]
    if not any(type(layer).__name__ == "Conv2D" for layer in flat_layers(model)):
        return [no_convolution().format(call=call, judged=judged)]
    return []


def cause_of(problems):
    """Return the root cause a check's problems share with other checks' ('' if none), in one line.

    A model without a Conv2D, or no model at all, fails every network check for that one reason; a block holding
    more than random layers fails the checks at inference of the block and of both networks (ACTS_AT_INFERENCE); one
    shape-math misconception (one hint after every wrong answer) fails the tests of every function sharing a formula.
    """
    import re

    for template in (no_convolution(), NOT_A_MODEL, NO_LESSON_AUGMENTATION):
        said = max(re.split(r"\{\w+\}", template), key=len)  # its longest fixed words
        called = re.match(r"Called (\w+)\(", problems[0]) if problems else None
        if called and all(said in problem for problem in problems):
            return f"{called.group(1)}(): {said.strip(' .:')}"
    inside = {problem[problem.find(ACTS_AT_INFERENCE):] for problem in problems if ACTS_AT_INFERENCE in problem}
    if problems and len(inside) == 1 and all(ACTS_AT_INFERENCE in problem for problem in problems):
        return f"build_augmentation(): {inside.pop()}"
    said = [problem for problem in problems if not problem.startswith("... and ")]
    hints = {problem.partition(KERAS_GIVES)[2].partition(". ")[2] for problem in said}
    if said and len(hints) == 1 and "" not in hints:
        return hints.pop()
    return ""


def needs_convolutions(judged):
    """Make a network check fail with NO_CONVOLUTION for a model without a Conv2D, instead of passing vacuously."""

    def decorate(check):
        @functools.wraps(check)
        def checked(model, call, *args, **kwargs):
            return check_has_convolutions(model, call, judged) or check(model, call, *args, **kwargs)

        return checked

    return decorate


NO_LESSON_AUGMENTATION = ("Called {call}. The block has {found}, but none of the lesson's {lesson}, so {judged} is not "
                          "the lesson's augmentation's: it earns nothing until the block holds at least one of them.")


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


def _shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _nth(kind, index):
    ordinal = ORDINALS[index] if index < len(ORDINALS) else f"#{index + 1}"
    return f"the {ordinal} {KIND_NAMES[kind]}"


def lesson_pooling():
    """Return the settings of the lesson's first MaxPooling2D ({} if its networks have none)."""
    for builder in lesson()["networks"]:
        for kind, settings in network(builder)["layers"]:
            if kind == "MaxPooling2D":
                return {key: value for key, value in settings.items() if key != OTHERS}
    return {}


def _pool_after_each_conv_block():
    """Return whether every run of convolutions in the lesson's first network is followed by a pooling layer."""
    kinds = next(([kind for kind, _shape, _params in found["stages"]] for found in lesson()["networks"].values()
                  if found["stages"]), [])
    ends = [after for kind, after in zip(kinds, kinds[1:] + [None]) if kind == "conv" and after != "conv"]
    return bool(ends) and all(after == "pool" for after in ends)


@needs_convolutions("its input shape")
def check_input_shape(model, call):
    """Return a problem if the model does not take the lesson's images (e.g. 32x32x3)."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return [f"Called {call}. The model has no Input: start it with keras.Input(shape={input_shape()})."]
    shape = tuple(inputs[0].shape[1:])
    if shape != input_shape():
        return [f"Called {call}. The model takes inputs of shape {_shape((None,) + shape)}, but {dataset_name()} "
                f"images are {_shape((None,) + input_shape())}."]
    return []


@needs_convolutions("the output shape after every stage")
def check_stage_shapes(model, call, expected):
    """Return the first place where the model's stages differ from the lesson's table, with a likely cause."""
    found = stages(model)
    inputs = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else input_shape()
    seen = {kind: 0 for kind in KIND_NAMES}
    for index, (kind, shape, _params) in enumerate(expected):
        where = _nth(kind, seen[kind])
        seen[kind] += 1
        if index >= len(found):
            return [f"Called {call}. The lesson's network continues with {where}, output "
                    f"{_shape((None,) + shape)}, but your model ends before it."]
        got_kind, layer, got_shape = found[index]
        want = (None,) + shape
        code = _stage_code(expected, index)
        if got_kind != kind:
            before = f"After {describe(found[index - 1][1])}, t" if index else "T"
            swapped = (index + 1 < len(found) and index + 1 < len(expected) and found[index + 1][0] == kind
                       and expected[index + 1][0] == got_kind)
            hint = (f" The order is wrong: the lesson has the {KIND_NAMES[kind]} first, then the "
                    f"{KIND_NAMES[got_kind]}." if swapped else _missing_stage_hint(kind, got_kind, code))
            return [f"Called {call}. {before}he lesson's network has {where} giving {_shape(want)}, but your "
                    f"model has {describe(layer)} giving {_shape(got_shape)} there." + hint]
        if tuple(got_shape) != want:
            if type(layer).__name__ != KIND_NAMES[kind]:
                where = f"your {type(layer).__name__} (where the lesson has {where})"
            hint = _shape_hint(kind, layer, got_shape, want, code, _lesson_padding(expected))
            if kind == "dense" and index == len(expected) - 1:
                hint = f" The head is {_head_code(expected, code)}."
            if inputs != input_shape() and index == 0:
                hint = (f" Your model takes inputs of shape {_shape((None,) + inputs)}; {dataset_name()} images are "
                        f"{_shape((None,) + input_shape())}: use keras.Input(shape={input_shape()}).")
            return [f"Called {call}. The output of {where} is {_shape(got_shape)}, but the lesson's network gives "
                    f"{_shape(want)}." + hint]
    if len(found) > len(expected):
        extra = ", ".join(describe(layer) for _, layer, _ in found[len(expected):])
        return [f"Called {call}. After the lesson's last layer your model has more layers: {extra}."]
    return []


def _lesson_network(expected):
    """Return the lesson's network whose stages these are, else None."""
    return next((found for found in lesson()["networks"].values() if tuple(found["stages"]) == tuple(expected)), None)


def _stage_code(expected, index):
    """Return how the lesson writes the layer of one of its stages, e.g. "MaxPooling2D(2)" (None if unknown)."""
    found = _lesson_network(expected)
    if found is not None and index < len(found["layer_code"]):
        return found["layer_code"][index]
    kind = expected[index][0]
    return next((code for network_ in lesson()["networks"].values()
                 for (got_kind, _shape, _params), code in zip(network_["stages"], network_["layer_code"])
                 if got_kind == kind), None)


def _lesson_padding(expected):
    """Return the padding of the lesson's first convolution in these stages ('same' or 'valid'; None if unknown)."""
    codes = [_stage_code(expected, index) for index, stage in enumerate(expected) if stage[0] == "conv"]
    if not codes or codes[0] is None:
        return None
    return "same" if "padding='same'" in codes[0] else "valid"


def _kind_of(code, default):
    """Return the layer kind a layer's code makes: "GlobalAveragePooling2D" for "GlobalAveragePooling2D()"."""
    return code.partition("(")[0] if code else default


def _head_code(expected, code):
    """Return the lesson's head as written, num_classes where the builder follows it: Dense(num_classes)."""
    found = _lesson_network(expected)
    units = expected[-1][1][-1]
    if code and found is not None and found.get("num_classes_followed") and code.startswith(f"Dense({units}"):
        return "Dense(num_classes" + code.removeprefix(f"Dense({units}")
    return code or "Dense(num_classes)"


def _missing_stage_hint(kind, got_kind, code):
    if kind == "pool":
        return f" Did you forget a {code or KIND_NAMES[kind]}?"
    if kind == "conv":
        return " Did you forget a Conv2D layer?"
    if kind == "gap" and got_kind == "dense":
        return f" Add {_kind_of(code, KIND_NAMES[kind])} before the Dense head."
    return ""


def _shape_hint(kind, layer, got, want, code, padding):
    if kind == "conv" and got[-1] != want[-1]:
        return f" It has {got[-1]} filters; the lesson uses {want[-1]}."
    if kind == "conv" and got[1] is not None and want[1] - got[1] == layer.kernel_size[0] - 1 and padding != "valid":
        return " Did you use padding='valid'? The lesson uses padding='same' so only pooling shrinks the map."
    if kind == "conv" and got[1] is not None and got[1] - want[1] == layer.kernel_size[0] - 1 > 0 \
            and padding != "same":
        return (f" Did you use padding='same'? The lesson's convolutions are unpadded ('valid'): each "
                f"{layer.kernel_size[0]}x{layer.kernel_size[1]} kernel shaves {got[1] - want[1]} pixels off the map.")
    if kind == "pool" and got[1] is not None and got[1] < want[1] and padding != "valid":
        return " A padding='valid' convolution before it shrank the map: use padding='same'."
    head = _kind_of(code, KIND_NAMES[kind])
    if kind == "gap" and len(got) > 2:
        return f" Use {head} to turn the feature map into a vector."
    if kind == "gap" and got[-1] != want[-1] and head == "GlobalAveragePooling2D":
        return " GlobalAveragePooling2D should average each of the last feature maps: Flatten keeps every position."
    if kind == "gap" and got[-1] != want[-1]:
        return f" The lesson's network has {head} here, which keeps every position of the last feature map."
    return ""


@needs_convolutions("its parameter count")
def check_param_counts(model, call, expected, total):
    """Return problems with per-stage and total parameter counts, computed from the weights' shapes."""
    problems = []
    found = {kind: [layer for got_kind, layer, _ in stages(model) if got_kind == kind] for kind in KIND_NAMES}
    seen = {kind: 0 for kind in KIND_NAMES}
    for kind, _shape, params in expected:
        if problems:  # one wrong layer is enough: later ones usually follow from it
            break
        index, seen[kind] = seen[kind], seen[kind] + 1
        where = _nth(kind, index)
        if index >= len(found[kind]):
            if params:
                problems.append(f"Called {call}. The lesson's network has {where} with {params:,} parameters, but "
                                f"your model has no {where.removeprefix('the ')}.")
            continue
        layer = found[kind][index]
        got = layer_params(layer)
        if got != params:
            problems.append(f"Called {call}. {where[0].upper() + where[1:]} ({describe(layer)}) has {got:,} "
                            f"parameters, but the lesson's network has {params:,} there.")
    got_total = total_params(model)
    if got_total != total:
        problems.append(f"Called {call}. The model has {got_total:,} parameters in total, but the lesson's network "
                        f"has {total:,}.")
    return problems


def head_sizes(expected):
    """Return the head's parameters after GlobalAveragePooling2D and after Flatten, from a network's stages."""
    maps = [shape for kind, shape, _params in expected if kind == "pool"]
    dense = [(shape, params) for kind, shape, params in expected if kind == "dense"]
    if not maps or not dense:
        return None
    (height, width, channels), (units,) = maps[-1], dense[-1][0]
    return channels * units + units, height * width * channels * units + units


@needs_convolutions("its head")
def check_gap_head(model, call, expected):
    """Return a problem if the head flattens instead of using GlobalAveragePooling2D (expected: the stages)."""
    names = [type(layer).__name__ for layer in flat_layers(model)]
    if "Flatten" in names:
        sizes = head_sizes(expected)
        counts = f" ({sizes[0]:,} head parameters instead of {sizes[1]:,})" if sizes else ""
        return [f"Called {call}. The head uses Flatten, which gives Dense a weight for every position of the last "
                f"feature map; the lesson uses GlobalAveragePooling2D{counts}."]
    if "GlobalMaxPooling2D" in names:
        return [f"Called {call}. The head uses GlobalMaxPooling2D; the lesson uses GlobalAveragePooling2D."]
    if "GlobalAveragePooling2D" not in names:
        return [f"Called {call}. The model has no GlobalAveragePooling2D before its Dense head."]
    return []


@needs_convolutions("its pooling")
def check_max_pooling(model, call):
    """Return a problem unless the model downsamples with MaxPooling2D(2), and only with it."""
    found = flat_layers(model)
    want = lesson_pooling()
    size = setting_text(want["pool_size"]) if want else "2"
    for layer in found:
        if type(layer).__name__ == "AveragePooling2D":
            return [f"Called {call}. The model uses AveragePooling2D; the lesson's network downsamples with "
                    f"MaxPooling2D({size}), which keeps the strongest response in each {size}x{size} window."]
    pools = [layer for layer in found if type(layer).__name__ == "MaxPooling2D"]
    if not pools:
        shrinks = "halves" if size == "2" else "shrinks"
        where = " after each conv block" if _pool_after_each_conv_block() else ""
        return [f"Called {call}. The model has no MaxPooling2D; the lesson's network {shrinks} the feature map with "
                f"MaxPooling2D({size}){where}."]
    for index, layer in enumerate(pools):
        kind, settings = layer_settings(layer)
        if want and settings != want:
            size, stride = setting_text(want["pool_size"]), setting_text(want["strides"])
            return [f"Called {call}. The {ORDINALS[min(index, len(ORDINALS) - 1)]} MaxPooling2D is "
                    f"{spec_repr(kind, settings)}; the lesson's is MaxPooling2D({size}): {size}x{size} windows, "
                    f"stride {stride}, padding={want['padding']!r}."]
    return []


@needs_convolutions("its non-linearity")
def check_nonlinearity(model, call):
    """Return a problem if some Conv2D is not followed by a non-linearity before the next conv or dense."""
    layers_ = flat_layers(model)
    convs = 0
    for index, layer in enumerate(layers_):
        if type(layer).__name__ != "Conv2D":
            continue
        convs += 1
        if activation_name(layer) not in LINEAR:
            continue
        following = []
        for after in layers_[index + 1:]:
            if type(after).__name__ in ("Conv2D", "Dense"):
                break
            following.append(activation_name(after) if type(after).__name__ in ACTIVATION_LAYERS else None)
        if not any(name not in LINEAR for name in following):
            return [f"Called {call}. The {ORDINALS[convs - 1]} Conv2D ({describe(layer)}) has no activation: "
                    f"without a non-linearity, stacked convolutions collapse into one linear map. "
                    f"Add activation='relu'."]
    return []


@needs_convolutions("its output layer")
def check_logits(model, call, num_classes):
    """Return problems if the model does not end in Dense(num_classes) logits (no softmax)."""
    layers_ = flat_layers(model)
    last = layers_[-1] if layers_ else None
    if last is None:
        return [f"Called {call}. The model has no layers."]
    if activation_name(last) == "softmax" or any(
            activation_name(layer) == "softmax" for layer in layers_):
        return [f"Called {call}. The model ends in a softmax; the lesson's network outputs logits (no softmax), "
                f"because the loss is SparseCategoricalCrossentropy(from_logits=True)."]
    if activation_name(last) not in LINEAR:
        return [f"Called {call}. The model ends in a {activation_name(last)} activation; the lesson's network "
                f"ends in Dense(num_classes) with no activation (logits), because the loss is "
                f"SparseCategoricalCrossentropy(from_logits=True)."]
    units = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else getattr(last, "units", None)
    if units != num_classes:
        return [f"Called {call}. The model outputs {units} values per image, but num_classes={num_classes}: "
                f"use Dense(num_classes) instead of a fixed number."]
    return []


@needs_convolutions("its output layer")
def check_softmax_output(model, call, num_classes):
    """Return problems if the model does not end in Dense(num_classes, activation='softmax') (probabilities)."""
    layers_ = flat_layers(model)
    last = layers_[-1] if layers_ else None
    if last is None:
        return [f"Called {call}. The model has no layers."]
    if activation_name(last) != "softmax":
        ends = "no activation (logits)" if activation_name(last) in LINEAR else f"a {activation_name(last)} activation"
        return [f"Called {call}. The model ends in {ends}; the lesson's network ends in Dense(num_classes, "
                f"activation='softmax'), so it outputs one probability per class."]
    units = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else getattr(last, "units", None)
    if units != num_classes:
        return [f"Called {call}. The model outputs {units} values per image, but num_classes={num_classes}: "
                f"use Dense(num_classes) instead of a fixed number."]
    return []


@needs_convolutions("its Rescaling")
def check_rescaling(model, call):
    """Return a problem unless the lesson's Rescaling sits after the augmentation and before the first Conv2D."""
    names = [type(layer).__name__ for layer in flat_layers(model)]
    rescalers = [layer for layer in flat_layers(model) if type(layer).__name__ == "Rescaling"]
    if not rescalers:
        return [f"Called {call}. The model has no Rescaling({rescale_text()}) layer: the lesson's model owns its "
                f"normalisation, so it takes raw {pixel_range()} pixels and scales them to 0-1 itself."]
    if len(rescalers) > 1:
        return [f"Called {call}. The model has {len(rescalers)} Rescaling layers, so the pixels are scaled "
                f"{len(rescalers)} times and no longer span 0-1; the lesson's network has one "
                f"Rescaling({rescale_text(spaced=True)}), "
                f"right after the augmentation block."]
    layer = rescalers[0]
    scale = float(np.squeeze(layer.scale)) if np.size(layer.scale) == 1 else None
    offset = float(np.squeeze(layer.offset)) if np.size(layer.offset) == 1 else None
    if scale is None or abs(scale - rescale()) > 1e-6 or offset != 0.0:
        return [f"Called {call}. The Rescaling layer has scale={layer.scale} and offset={layer.offset}; the lesson "
                f"uses Rescaling({rescale_text(spaced=True)}), which maps {pixel_range()} pixels to 0-1."]
    position = names.index("Rescaling")
    if "Conv2D" in names and names.index("Conv2D") < position:
        return [f"Called {call}. Rescaling comes after a Conv2D; put it right after the augmentation block, "
                f"before the first Conv2D."]
    if any(is_augmentation(layer) for layer in flat_layers(model)[position + 1:]):
        return [f"Called {call}. Rescaling comes before the augmentation layers; the lesson puts it right after "
                f"the augmentation block."]
    return []


def _default_classes():
    """Return the number of classes the lesson's builders default to (their num_classes), e.g. 10."""
    return next((found["num_classes"] for found in lesson()["networks"].values() if found.get("num_classes")),
                next((found["outputs"] for found in lesson()["networks"].values() if found["stages"]), None))


@needs_convolutions("its number of outputs")
def check_num_classes(model, call, num_classes):
    """Return a problem unless the model outputs num_classes logits per image."""
    outputs = getattr(model, "outputs", None)
    units = tuple(outputs[0].shape[1:]) if outputs else None
    if units != (num_classes,):
        got = "an unknown shape" if units is None else _shape((None,) + units)
        return [f"Called {call}. The output shape is {got}, but with num_classes={num_classes} it should be "
                f"{_shape((None, num_classes))}: use Dense(num_classes), not Dense({_default_classes()})."]
    return []


def _shown_factor(value):
    """Return a factor as the student wrote it: 0.5 for (-0.5, 0.5)."""
    symmetric = symmetric_factor(value)
    return value if symmetric is None else f"{symmetric:g}"


def _rotation_hint(factor):
    want = lesson_rotation()
    if factor is None:
        return f" Give one number: {lesson_layer_code('RandomRotation')}."
    if factor > 1:
        return f" A factor is a fraction of a full turn, not degrees: {factor:g} degrees is {factor / 360:.2g}."
    if factor >= 0.25:
        return (f" A factor is a fraction of a full turn, so {factor:g} rotates up to +/-{factor * 360:g} degrees and "
                f"turns objects on their side or upside down.")
    if want is not None and factor > want:
        return (f" A factor is a fraction of a full turn, so {factor:g} rotates up to +/-{factor * 360:g} degrees, "
                f"more than the lesson's +/-{want * 360:g}.")
    return f" A factor is a fraction of a full turn: {factor:g} rotates only up to +/-{factor * 360:g} degrees."


def exception_hint(message):
    """Return the kit's hint for an exception raised by student code (its message and source line), or ''."""
    import re

    rotation = re.search(r"Received: factor=\(?\s*(-?[0-9.]+)", message)
    if rotation and "RandomRotation" in message:
        factor = abs(float(rotation.group(1)))
        return _rotation_hint(factor).strip() if factor > 1 else ""
    return ""


def _kinds_text(kinds):
    return ", ".join(kinds[:-1]) + f" and {kinds[-1]}" if len(kinds) > 1 else "".join(kinds)


def _flip_problem(layer, want, call):
    """Return the problem with a RandomFlip whose mode differs from the lesson's."""
    if "vertical" in layer.mode and "vertical" not in want["mode"]:
        return (f"Called {call}. RandomFlip uses mode={layer.mode!r}: vertical flips destroy {dataset_name()} "
                f"labels (an upside-down truck is not a typical truck). Use {lesson_layer_code('RandomFlip')}.")
    return f"Called {call}. RandomFlip uses mode={layer.mode!r}; the lesson uses {lesson_layer_code('RandomFlip')}."


def check_augmentation_layers(model, call):
    """Return problems unless the block holds the lesson's augmentation layers, with the lesson's settings."""
    found = augmentation_layers(model)
    kinds = [type(layer).__name__ for layer in found]
    wanted = dict(lesson_augmentation())
    block = augmentation_text()
    if not found:
        return [f"Called {call}. There are no augmentation layers; the lesson's block is {block}, and the networks "
                f"call it right after the Input."]
    problems = []
    for layer in found:
        if type(layer).__name__ == "RandomFlip" and "RandomFlip" in wanted and layer.mode != wanted["RandomFlip"][
                "mode"]:
            problems.append(_flip_problem(layer, wanted["RandomFlip"], call))
    for kind, settings in wanted.items():
        if kind not in kinds:
            problems.append(f"Called {call}. The augmentation has no {kind}; the lesson's block is {block}.")
            continue
        if kinds.count(kind) > 1:
            problems.append(f"Called {call}. The augmentation has {kinds.count(kind)} {kind} layers; the lesson's "
                            f"block has one.")
        layer = found[kinds.index(kind)]
        got = layer_settings(layer)[1]
        if kind == "RandomRotation" and got["factor"] != settings["factor"]:
            problems.append(f"Called {call}. RandomRotation has factor={_shown_factor(layer.factor)}; the lesson uses "
                            f"{settings['factor']:g} (about +/-{settings['factor'] * 360:g} degrees)."
                            + _rotation_hint(symmetric_factor(layer.factor)))
        elif kind == "RandomZoom" and got != settings:
            problems.append(f"Called {call}. RandomZoom has height_factor={layer.height_factor}, "
                            f"width_factor={layer.width_factor}; the lesson uses {lesson_layer_code(kind)}.")
        elif kind not in ("RandomFlip", "RandomRotation", "RandomZoom"):
            differing = [key for key, value in settings.items() if not same_setting(got.get(key), value)]
            if differing:
                key = differing[0]
                problems.append(f"Called {call}. {kind} has {key}={setting_text(got.get(key))}; the lesson uses "
                                f"{lesson_layer_code(kind)}.")
        if got == settings:  # its main settings are the lesson's: every other one must be too
            problems += [f"Called {call}. {sentence}" for sentence in setting_differences(
                f"the {kind}", {OTHERS: lesson_augmentation_others(kind)}, {OTHERS: other_settings(layer, got)})]
    others = [kind for kind in kinds if kind not in wanted]
    if others:
        problems.append(f"Called {call}. The augmentation also has {', '.join(others)}; the lesson's block has "
                        f"only {_kinds_text(list(wanted))}.")
    order = [kind for kind in kinds if kind in wanted]
    if len(set(order)) == len(order) and order != [kind for kind in wanted if kind in order]:
        problems.append(f"Called {call}. The augmentation's layers come in the order {', '.join(order)}; the "
                        f"lesson's block is {block}, in this order.")
    return problems


@needs_convolutions("the augmentation block inside it")
def check_augmentation_inside(model, call, block=None):
    """Return problems unless the network holds the augmentation of `block`, what build_augmentation() returned.

    The block's own settings are judged where it is built (check_augmentation_layers); here only that the network
    uses it. Without a block, the network's augmentation is judged against the lesson's.
    """
    if block is None:
        return check_augmentation_layers(model, call)
    found = [spec_repr(*layer_settings(layer)) for layer in augmentation_layers(model)]
    want = [spec_repr(*layer_settings(layer)) for layer in augmentation_layers(block)]
    if not found:
        return [f"Called {call}. There are no augmentation layers in the model: call build_augmentation() right "
                f"after the Input, as in the lesson."]
    if found != want:
        return [f"Called {call}. The augmentation inside the model is {', '.join(found)}, but build_augmentation() "
                f"returns {', '.join(want) or 'no augmentation layers'}: call build_augmentation() right after the "
                f"Input, as in the lesson."]
    return []


def lesson_augmentation_in(block):
    """Return the block's layers that are one of the lesson's three, with the lesson's settings."""
    wanted = lesson_augmentation()
    return [layer for layer in augmentation_layers(block) if list(layer_settings(layer)) in map(list, wanted)]


def _without_lesson_augmentation(block, call, judged):
    """Return a problem if a behaviour check has none of the lesson's augmentation to judge."""
    if lesson_augmentation_in(block):
        return []
    found = ", ".join(spec_repr(*layer_settings(layer)) for layer in flat_layers(block)) or "no layers"
    return [NO_LESSON_AUGMENTATION.format(call=call, found=found, lesson=augmentation_text(), judged=judged)]


def _not_augmentation(block):
    """Return the kinds of the block's layers that are not random augmentation (they act at inference too)."""
    return [type(layer).__name__ for layer in flat_layers(block) if not is_augmentation(layer)]


def _acts_at_inference(kinds):
    return (f"{ACTS_AT_INFERENCE}{', '.join(kinds)}, which changes the images at inference too: keep "
            f"only the random layers in the block, and put Rescaling({rescale_text(spaced=True)}) in the network "
            f"right after it.")


def check_no_params(model, call):
    """Return a problem if the augmentation block has parameters (or none of the lesson's layers to judge)."""
    problems = _without_lesson_augmentation(model, call, "having no parameters")
    if problems:
        return problems
    count = total_params(model)
    if count:
        return [f"Called {call}. The augmentation block has {count:,} parameters; augmentation layers have none."]
    return []


def random_batch(seed=0, size=8):
    """Return a reproducible batch of raw uint8 images of the lesson's shape, e.g. (size, 32, 32, 3)."""
    return np.random.default_rng(seed).integers(0, 256, size=(size,) + input_shape(), dtype=np.uint8)


def check_identity_at_inference(block, call, images):
    """Return a problem unless the augmentation block returns its input unchanged with training=False and predict."""
    problems = _without_lesson_augmentation(block, call, "its behaviour at inference")
    if problems:
        return problems
    expected = images.astype("float32")
    direct = np.asarray(block(expected, training=False))
    if direct.shape != expected.shape or not np.array_equal(direct, expected):
        if _not_augmentation(block):
            return [f"Called {call}, then block(images, training=False). The images changed. "
                    + _acts_at_inference(_not_augmentation(block))]
        return [f"Called {call}, then block(images, training=False). The images changed: augmentation must be the "
                f"identity at inference."]
    predicted = np.asarray(block.predict(expected, verbose=0))
    if not np.array_equal(predicted, expected):
        return [f"Called {call}, then block.predict(images). The images changed: augmentation must be the identity "
                f"at inference."]
    return []


def check_active_in_training(block, call, images):
    """Return a problem unless the augmentation block changes some images with training=True."""
    import keras

    problems = _without_lesson_augmentation(block, call, "its behaviour in training")
    if problems:
        return problems
    keras.utils.set_random_seed(0)
    batch = images.astype("float32")
    changed = any(not np.array_equal(np.asarray(block(batch, training=True)), batch) for _ in range(3))
    if not changed:
        return [f"Called {call}, then block(images, training=True) three times. The images never changed: "
                f"augmentation must be active while training."]
    return []


def augmentation_io(model):
    """Return the symbolic (input, output) of the model's augmentation block or layers, or None."""
    import keras

    found = [layer for layer in model.layers
             if is_augmentation(layer) or (isinstance(layer, keras.Model) and augmentation_layers(layer))]
    if not found:
        return None
    try:
        return found[0].input, found[-1].output
    except (AttributeError, ValueError):  # a layer used more than once, or never called symbolically
        return None


def images_for(model, images):
    """Return the batch, or a random one of the same size if the model takes images of another shape."""
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else input_shape()
    if shape == images.shape[1:] or not all(isinstance(d, int) for d in shape):
        return images
    return np.random.default_rng(0).integers(0, 256, size=(len(images),) + shape, dtype=np.uint8)


FIXED_TRAINING = {
    True: "which asks for augmented images even at inference",
    False: "which asks for no augmentation even while training",
}


def fixed_training_calls(model):
    """Return [(layer name, value)] for the augmentation the model's graph calls with a fixed training=... argument."""
    import keras

    try:
        config = model.get_config()
    except Exception:  # no readable graph, nothing hard-wired to report
        return []
    by_name = {layer.name: layer for layer in model.layers}
    found = []
    for entry in config.get("layers", []) if isinstance(config, dict) else []:
        layer = by_name.get(entry.get("name")) if isinstance(entry, dict) else None
        if layer is None:
            continue
        nested = isinstance(layer, keras.Model)
        if nested:
            found += fixed_training_calls(layer)
        if not (is_augmentation(layer) or (nested and augmentation_layers(layer))):
            continue
        for node in entry.get("inbound_nodes") or []:
            kwargs = node.get("kwargs") if isinstance(node, dict) else None
            if isinstance(kwargs, dict) and isinstance(kwargs.get("training"), bool):
                found.append((layer.name, kwargs["training"]))
    return found


def fixed_training(call, name, training):
    """Return the problem of an augmentation the model calls with a fixed training=... argument."""
    return (f"Called {call}. Inside the model the augmentation ({name!r}) is called with training={training}, "
            f"{FIXED_TRAINING[training]}. Call it as in the lesson, x = data_augmentation(inputs), and let "
            f"model.fit() turn augmentation on and model.predict() turn it off.")


@needs_convolutions("its behaviour at inference")
def check_model_identity_at_inference(model, call, images):
    """Return a problem unless the model's augmentation is the identity at inference and its output is stable."""
    import keras

    for name, training in fixed_training_calls(model):
        return [fixed_training(call, name, training)]
    batch = images_for(model, images).astype("float32")
    ends = augmentation_io(model)
    if ends is None:
        return [f"Called {call}. The model has no augmentation layers, so there is no augmentation to be the identity "
                f"at inference: call build_augmentation() right after the Input, as in the lesson."]
    before, after = keras.Model(model.inputs[0], list(ends))(batch, training=False)
    if not np.array_equal(np.asarray(before), np.asarray(after)):
        blocks = [layer for layer in model.layers if isinstance(layer, keras.Model) and augmentation_layers(layer)]
        inside = [kind for block in blocks for kind in _not_augmentation(block)]
        if inside:
            return [f"Called {call}, then model(images, training=False). " + _acts_at_inference(inside)]
        return [f"Called {call}, then model(images, training=False). The augmentation changed the images at "
                f"inference. Call the augmentation block as block(x), without training=True."]
    first = np.asarray(model(batch, training=False))
    again = np.asarray(model.predict(batch, verbose=0))
    if not np.allclose(first, again, rtol=1e-5, atol=1e-5):
        return [f"Called {call}, then model(images, training=False) and model.predict(images). The outputs differ, "
                f"so something random is active at inference."]
    return []


def network_mistakes(model, call, builder, block=None):
    """Return a network's differences from the lesson's, one list of sentences per mistake.

    Everything the checks of a network judge: its input, the augmentation it holds (against `block`, what
    build_augmentation() returns), how it calls it, and its other layers and their settings (layer_mistakes).
    """
    missing = check_has_convolutions(model, call)
    if missing:
        return [missing]
    mistakes = [found for found in (check_input_shape(model, call), check_augmentation_inside(model, call, block))
                if found]
    mistakes += [[fixed_training(call, name, training)] for name, training in fixed_training_calls(model)[:1]]
    return mistakes + layer_mistakes(model, call, builder)


def one_mistake(model, call, builder, block=None):
    """Return the one mistake of a network that differs from the lesson's in one place only, in one line; else ''.

    A model without a Conv2D is not counted here: its checks share cause_of's NO_CONVOLUTION.
    """
    mistakes = network_mistakes(model, call, builder, block)
    if len(mistakes) != 1 or check_has_convolutions(model, call):
        return ""
    return f"{call.partition('(')[0]}(): {mistakes[0][0].removeprefix(f'Called {call}. ')}"


def first_conv(model):
    """Return the model's first Conv2D layer (nested models included)."""
    return next(layer for layer in flat_layers(model) if type(layer).__name__ == "Conv2D")


def normalised_filters(kernel):
    """Return a Conv2D kernel with each filter (last axis) scaled to [0, 1] on its own, as the lesson draws them."""
    kernel = np.asarray(kernel)
    low = kernel.min(axis=(0, 1, 2), keepdims=True)
    return (kernel - low) / (kernel.max(axis=(0, 1, 2), keepdims=True) - low + 1e-8)


def check_filters(got, model, call):
    """Return a problem unless got is the model's first Conv2D kernel, normalised filter by filter."""
    expected = normalised_filters(first_conv(model).get_weights()[0])
    return _array_problems(
        got, expected, 1e-5,
        wrong_shape=f"Called {call}. It returned shape {{got}}, but the first Conv2D's kernel has shape "
                    f"{{expected}} (kh, kw, in, out).",
        wrong_values=f"Called {call}. The values differ from the first Conv2D's kernel normalised filter by filter: "
                     f"(k - min) / (max - min + 1e-8) over axes (0, 1, 2).")


def first_conv_outputs(model, images):
    """Return the first Conv2D's output on images with training=False (the augmentation layers pass them through)."""
    import keras

    probe = keras.Model(model.inputs[0], first_conv(model).output)
    return np.asarray(probe(np.asarray(images, dtype="float32"), training=False))


FEATURE_MAPS_RESCALED = ("Called {call}. The maps are the first Conv2D's output on images / 255: your function "
                         "rescaled the images, then the model's own Rescaling(1/255) scaled them again. Pass the raw "
                         "images to the sub-model; the model rescales them itself.")
FEATURE_MAPS_DIFFER = ("Called {call}. The maps differ from the first Conv2D's output on the raw images with "
                       "training=False. Did you call the sub-model with training=False? Without it the augmentation "
                       "layers flip and rotate the probe images.")


def check_feature_maps(got, model, images, call):
    """Return a problem unless got is the first Conv2D's output on images with training=False."""
    expected = first_conv_outputs(model, images)
    problems = _array_problems(
        got, expected, 1e-4,
        wrong_shape=f"Called {call} on {len(images)} images. It returned shape {{got}}, but the first Conv2D gives "
                    f"{{expected}}.",
        wrong_values=FEATURE_MAPS_DIFFER.format(call=call))
    if problems and np.shape(got) == expected.shape:
        twice = first_conv_outputs(model, np.asarray(images, dtype="float32") / 255)
        # The maps of twice-scaled images are small: compare relative to their own size.
        if np.allclose(got, twice, rtol=1e-4, atol=1e-4 * float(np.abs(twice).max())):
            return [FEATURE_MAPS_RESCALED.format(call=call)]
    return problems


def _array_problems(got, expected, atol, *, wrong_shape, wrong_values):
    """Return wrong_shape (with both shapes filled in) or wrong_values if got differs from expected, else []."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return [wrong_shape.format(got=got.shape, expected=expected.shape)]
    if not np.allclose(got, expected, atol=atol):
        return [wrong_values]
    return []


# ---------------------------------------------------------------------------------------------
# TensorFlow's start-up lines: its C++ core prints them while TensorFlow is imported, before Python can silence
# them (TF_CPP_MIN_LOG_LEVEL silences only what comes later), and never because of the student's code. Wherever
# a student reads captured output (the grader's "What your code printed", `pytest exercises`), they are left out.
# ---------------------------------------------------------------------------------------------

TENSORFLOW_STARTUP_LINES = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    # absl's C++ log, e.g. "I0000 00:00:1795321218.202723    5856 port.cc:153] oneDNN custom operations are on."
    # (also cuda drivers, cuInit, the CPU-feature note)
    r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] ",
    # TensorFlow's own C++ log before 2.16: "2024-01-31 10:00:00.123456: I tensorflow/core/...cc:182] ..."
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [\w./-]+:\d+\] ",
    # the second line of the CPU-feature note, printed without a log prefix
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
)
_TENSORFLOW_STARTUP = re.compile("|".join(f"(?:{pattern})" for pattern in TENSORFLOW_STARTUP_LINES))


def without_tensorflow_startup(text: str) -> str:
    """Return text without the lines TensorFlow's C++ core prints at start-up."""
    return "".join(line for line in text.splitlines(keepends=True) if not _TENSORFLOW_STARTUP.match(line))
