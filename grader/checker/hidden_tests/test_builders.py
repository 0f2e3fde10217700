"""Hidden tests for the lesson's builders, by meaning: each runs once per builder part, where the lesson's
points.toml gives it points there (an augmentation block's part lists the block's checks, a network's part the
network's). What each compares with is derived from the lesson's reference (grader.checker.reference)."""

import json
import math

import numpy as np
import pytest

from grader.checker.checks.augmentation import (
    check_active_in_training,
    check_augmentation_inside,
    check_augmentation_layers,
    check_identity_at_inference,
    check_model_identity_at_inference,
    check_no_params,
    random_batch,
)
from grader.checker.checks.comparison import check_matches_lesson
from grader.checker.checks.expectations import augmentation_text, dataset_name, input_shape, network, rescale_text
from grader.checker.checks.models import ORDINALS, layer_params, stages
from grader.checker.checks.network import (
    check_gap_head,
    check_input_shape,
    check_logits,
    check_max_pooling,
    check_nonlinearity,
    check_num_classes,
    check_param_counts,
    check_rescaling,
    check_softmax_output,
    check_stage_shapes,
)
from grader.checker.checks.preconditions import check_has_convolutions
from grader.checker.hidden_tests.cases import NUM_CLASSES
from grader.checker.reference import reference_config
from grader.checker.session import expect
from grader.lesson.manifest import BUILDER_PARTS, CALLS, EXTENDS


def builder_of(part):
    return BUILDER_PARTS[part]


def call_of(part):
    return f"{builder_of(part)}()"


@pytest.fixture
def model(grading, part):
    return grading.model(builder_of(part))


# ---------------------------------------------------------------------------------------------
# A block of random augmentation layers (a builder whose reference has no Input).
# ---------------------------------------------------------------------------------------------


def reference_kind(part):
    """Return the class and name of the reference's model, e.g. ("Sequential", "augmentation")."""
    config = json.loads(reference_config(builder_of(part)))
    return config["class_name"], config["config"]["name"]


def test_model_class_and_name(model, part):
    import keras

    kind, name = reference_kind(part)
    if not isinstance(model, getattr(keras, kind, keras.Model)) or model.name != name:
        expect([f"Called {call_of(part)}. It returned a {type(model).__name__} named {model.name!r}; the lesson's "
                f"block is keras.{kind}([...], name={name!r})."])


test_model_class_and_name.title = lambda part: "a keras.{} named {!r}".format(*reference_kind(part))


def test_augmentation_layers_and_settings(model, part):
    expect([p for p in check_augmentation_layers(model, call_of(part)) if "vertical" not in p])


test_augmentation_layers_and_settings.title = lambda part: augmentation_text()


def test_no_vertical_flips(model, part):
    expect([p for p in check_augmentation_layers(model, call_of(part)) if "vertical" in p])


test_no_vertical_flips.title = lambda part: f"no vertical flips (they destroy {dataset_name()} labels)"


def test_has_no_parameters(model, part):
    """zero parameters"""
    expect(check_no_params(model, call_of(part)))


def test_identity_at_inference(model, part):
    """the identity at inference: training=False, predict and evaluate"""
    call = call_of(part)
    images = random_batch(seed=11, size=16)
    problems = check_identity_at_inference(model, call, images)
    if not problems:
        model.compile(loss="mean_squared_error")
        loss = model.evaluate(images.astype("float32"), images.astype("float32"), verbose=0)
        if not np.isclose(float(np.ravel(loss)[0]), 0.0):
            problems = [f"Called {call}, then block.evaluate(images, images). The loss is {loss}, not 0: the images "
                        f"changed, but augmentation must be the identity at inference."]
    expect(problems)


def test_active_in_training(model, part):
    """active in training: changes images with training=True"""
    expect(check_active_in_training(model, call_of(part), random_batch(seed=12, size=16)))


# ---------------------------------------------------------------------------------------------
# A network (a builder whose reference takes the lesson's images).
# ---------------------------------------------------------------------------------------------


def test_takes_the_lessons_input(model, part):
    expect(check_input_shape(model, call_of(part)))


test_takes_the_lessons_input.title = lambda part: f"input of shape {input_shape()}"


def test_output_shape_after_every_stage(model, part):
    """output shape after every conv stage and pool, as in the lesson's table"""
    expect(check_stage_shapes(model, call_of(part), network(builder_of(part))["stages"]))


def test_parameter_counts(model, part):
    """parameter count of every layer and in total"""
    expected = network(builder_of(part))
    expect(check_param_counts(model, call_of(part), expected["stages"], expected["total_params"]))


def test_matches_the_lessons_network(model, part):
    """the lesson's network layer by layer, every setting that changes what it computes or how it trains"""
    expect(check_matches_lesson(model, call_of(part), builder_of(part)))


def test_global_average_pooling_head(model, part):
    """GlobalAveragePooling2D head, not Flatten"""
    expect(check_gap_head(model, call_of(part), network(builder_of(part))["stages"]))


def test_max_pooling(model, part):
    """max pooling"""
    expect(check_max_pooling(model, call_of(part)))


def test_nonlinearity_after_every_conv(model, part):
    """a non-linearity after every Conv2D"""
    expect(check_nonlinearity(model, call_of(part)))


def test_rescaling_after_augmentation(model, part):
    expect(check_rescaling(model, call_of(part)))


test_rescaling_after_augmentation.title = lambda part: (f"Rescaling({rescale_text()}) inside the model, right after "
                                                        f"augmentation")


def outputs_probabilities(part):
    """Return whether the reference network ends in a softmax (probabilities) rather than logits."""
    return network(builder_of(part))["output_activation"] == "softmax"


def test_output_activation(model, part):
    outputs = network(builder_of(part))["outputs"]
    check = check_softmax_output if outputs_probabilities(part) else check_logits
    expect(check(model, call_of(part), outputs))


test_output_activation.title = lambda part: ("probabilities out: Dense(num_classes, activation='softmax')"
                                             if outputs_probabilities(part) else
                                             "logits out: Dense(num_classes), no softmax")


def test_respects_num_classes(grading, part):
    """num_classes respected"""
    call = f"{builder_of(part)}(num_classes={NUM_CLASSES})"
    expect(check_num_classes(grading.model(builder_of(part), num_classes=NUM_CLASSES), call, NUM_CLASSES))


def test_augmentation_block_inside(grading, model, part):
    """the augmentation block inside the model"""
    blocks = [called for called in CALLS.get(builder_of(part), ())]
    block = grading.called_model(builder_of(part), blocks[0]) if blocks else None
    expect(check_augmentation_inside(model, call_of(part), block))


def test_augmentation_identity_inside_model(model, part):
    """augmentation is the identity inside the whole model at inference"""
    expect(check_model_identity_at_inference(model, call_of(part), random_batch(seed=13, size=8)))


# ---------------------------------------------------------------------------------------------
# The new block of a network that extends another (lesson.toml's `extends`): the lesson's hand math.
# ---------------------------------------------------------------------------------------------


def new_block(part):
    """Return what a network adds to the one it extends: its conv and pool stages (code, shape, params, number),
    the shape before it, and the head."""
    base, grown = network(EXTENDS[part]), network(builder_of(part))
    start = next(index for index, (old, new) in enumerate(zip(base["stages"], grown["stages"])) if old != new)
    pool = next(index for index in range(start, len(grown["stages"])) if grown["stages"][index][0] == "pool")
    head = [index for index, stage in enumerate(grown["stages"]) if stage[0] == "dense"][-1]

    def stage(index):
        kind, shape, params = grown["stages"][index]
        return {"code": grown["layer_code"][index], "shape": tuple(shape), "params": params,
                "number": sum(1 for other in grown["stages"][:index + 1] if other[0] == kind)}

    return {"before": tuple(grown["stages"][start - 1][1]), "conv": stage(start), "pool": stage(pool),
            "head": stage(head), "base": EXTENDS[part]}


def _conv_math(block):
    """Return the lesson's hand math of the new Conv2D: 'k*k*C_in*F + F = total'."""
    filters, channels, params = block["conv"]["shape"][-1], block["before"][-1], block["conv"]["params"]
    kernel = math.isqrt((params - filters) // (channels * filters))
    return f"{kernel}*{kernel}*{channels}*{filters} + {filters} = {params:,}"


def _head_math(block):
    """Return the lesson's hand math of the head: 'channels*units + units = total'."""
    channels, units = block["pool"]["shape"][-1], block["head"]["shape"][-1]
    return f"{channels}*{units} + {units} = {block['head']['params']:,}"


def _filters_of(code):
    return code.split(",")[0] + ")"


def test_new_block(model, part):
    call = call_of(part)
    block = new_block(part)
    conv, pool, head = block["conv"], block["pool"], block["head"]
    filters, pooled = conv["shape"][-1], (None, *pool["shape"])
    short = _filters_of(conv["code"])
    expect(check_has_convolutions(model, call, "its new block"))
    found = stages(model)
    convs = [(layer, shape) for kind, layer, shape in found if kind == "conv"]
    pools = [shape for kind, _, shape in found if kind == "pool"]
    dense = [layer for kind, layer, _ in found if kind == "dense"]
    problems = []
    nth_conv, nth_pool = conv["number"] - 1, pool["number"] - 1
    if len(convs) <= nth_conv or convs[nth_conv][1][-1] != filters:
        problems.append(f"Called {call}. The lesson's v2 adds a new block after the {block['before']} pool: "
                        f"{conv['code']}, then {pool['code']}. Your model has {len(convs)} Conv2D layers; the "
                        f"{ORDINALS[nth_conv]} should have {filters} filters.")
    elif layer_params(convs[nth_conv][0]) != conv["params"]:
        problems.append(f"Called {call}. The new {short} has {layer_params(convs[nth_conv][0]):,} parameters; "
                        f"the lesson's hand math gives {_conv_math(block)}.")
    elif len(pools) > nth_pool and pools[nth_pool][-1] != filters:  # the new pool acts on fewer channels: it is first
        problems.append(f"Called {call}. The {ORDINALS[nth_pool]} MaxPooling2D gives {tuple(pools[nth_pool])}, "
                        f"before the new {short}: the order is wrong. The lesson's v2 adds {conv['code']} first, "
                        f"then {pool['code']}.")
    elif len(pools) <= nth_pool or tuple(pools[nth_pool]) != pooled:
        last = tuple(pools[-1]) if pools else None
        problems.append(f"Called {call}. After the new {short} the lesson's v2 has a {pool['code']} giving "
                        f"{pooled}; your last pool gives {last}. Did you forget the new block's pool?")
    if not dense or layer_params(dense[-1]) != head["params"]:
        got = f"{layer_params(dense[-1]):,}" if dense else "no"
        problems.append(f"Called {call}. The Dense head has {got} parameters; with {pool['shape'][-1]} channels "
                        f"after GAP the lesson gives {_head_math(block)}.")
    expect(problems)


def _new_block_title(part):
    block = new_block(part)
    return (f"new block: {_filters_of(block['conv']['code'])} with {block['conv']['params']:,} parameters, pool to "
            f"{block['pool']['shape']}, head {block['head']['params']:,}")


# The test's name in reports holds the lesson's numbers, derived from its reference.
test_new_block.title = _new_block_title
