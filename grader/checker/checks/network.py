"""The network checks: a built model compared by meaning (not by layer names) with the lesson's network."""

import numpy as np

from grader.checker.checks.comparison import OTHERS, layer_settings, setting_text, spec_repr
from grader.checker.checks.expectations import (
    dataset_name,
    input_shape,
    lesson,
    network,
    pixel_range,
    rescale,
    rescale_text,
)
from grader.checker.checks.models import (
    ACTIVATION_LAYERS,
    KIND_NAMES,
    LINEAR,
    ORDINALS,
    activation_name,
    describe,
    flat_layers,
    is_augmentation,
    layer_params,
    stages,
    total_params,
)
from grader.checker.checks.preconditions import needs_convolutions


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
