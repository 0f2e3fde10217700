"""Hidden tests for build_cnn and build_cnn_v2, by meaning: shapes, counts, layer kinds, behaviour."""

import pytest

from grader.checker.checks.augmentation import (
    check_augmentation_inside,
    check_model_identity_at_inference,
    random_batch,
)
from grader.checker.checks.comparison import check_matches_lesson
from grader.checker.checks.expectations import input_shape, network, rescale_text
from grader.checker.checks.network import (
    check_gap_head,
    check_input_shape,
    check_logits,
    check_max_pooling,
    check_nonlinearity,
    check_num_classes,
    check_param_counts,
    check_rescaling,
    check_stage_shapes,
)
from grader.checker.hidden_tests.cases import NUM_CLASSES
from grader.checker.session import expect


@pytest.fixture(params=["build_cnn", "build_cnn_v2"])
def part(request):
    return request.param


@pytest.fixture
def model(grading, part):
    return grading.model(part)


def test_takes_32x32x3_images(model, part):
    expect(check_input_shape(model, f"{part}()"))


test_takes_32x32x3_images.__doc__ = f"input of shape {input_shape()}"


def test_output_shape_after_every_stage(model, part):
    """output shape after every conv stage and pool, as in the lesson's table"""
    expect(check_stage_shapes(model, f"{part}()", network(part)["stages"]))


def test_parameter_counts(model, part):
    """parameter count of every layer and in total"""
    expect(check_param_counts(model, f"{part}()", network(part)["stages"], network(part)["total_params"]))


def test_matches_the_lessons_network(model, part):
    """the lesson's network layer by layer, every setting that changes what it computes or how it trains"""
    expect(check_matches_lesson(model, f"{part}()", part))


def test_global_average_pooling_head(model, part):
    """GlobalAveragePooling2D head, not Flatten"""
    expect(check_gap_head(model, f"{part}()", network(part)["stages"]))


def test_max_pooling(model, part):
    """max pooling"""
    expect(check_max_pooling(model, f"{part}()"))


def test_nonlinearity_after_every_conv(model, part):
    """a non-linearity after every Conv2D"""
    expect(check_nonlinearity(model, f"{part}()"))


def test_rescaling_after_augmentation(model, part):
    expect(check_rescaling(model, f"{part}()"))


# The names of these tests in reports hold the lesson's values, derived from its reference.
test_rescaling_after_augmentation.__doc__ = (f"Rescaling({rescale_text()}) inside the model, right after "
                                             f"augmentation")


def test_outputs_logits(model, part):
    """logits out: Dense(num_classes), no softmax"""
    expect(check_logits(model, f"{part}()", network(part)["outputs"]))


def test_respects_num_classes(grading, part):
    """num_classes respected"""
    call = f"{part}(num_classes={NUM_CLASSES})"
    expect(check_num_classes(grading.model(part, num_classes=NUM_CLASSES), call, NUM_CLASSES))


def test_augmentation_block_inside(grading, model, part):
    """the augmentation block inside the model"""
    expect(check_augmentation_inside(model, f"{part}()", grading.called_model(part, "build_augmentation")))


def test_augmentation_identity_inside_model(model, part):
    """augmentation is the identity inside the whole model at inference"""
    expect(check_model_identity_at_inference(model, f"{part}()", random_batch(seed=13, size=8)))
