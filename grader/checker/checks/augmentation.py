"""The augmentation checks: the block's layers and settings, and what it does at inference and in training."""

import numpy as np

from grader.checker.checks.comparison import (
    OTHERS,
    layer_settings,
    other_settings,
    same_setting,
    setting_differences,
    setting_text,
    spec_repr,
)
from grader.checker.checks.expectations import (
    augmentation_text,
    dataset_name,
    input_shape,
    lesson_augmentation,
    lesson_augmentation_others,
    lesson_layer_code,
    lesson_rotation,
    rescale_text,
)
from grader.checker.checks.models import (
    augmentation_layers,
    flat_layers,
    is_augmentation,
    symmetric_factor,
    total_params,
)
from grader.checker.checks.preconditions import ACTS_AT_INFERENCE, NO_LESSON_AUGMENTATION, needs_convolutions


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
