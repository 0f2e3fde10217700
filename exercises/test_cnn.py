"""Visible tests for cnn.py: the lesson's shape table and parameter counts, checked by meaning."""

import lesson_checks as checks
import pytest

BUILDERS = ["build_cnn", "build_cnn_v2"]


@pytest.fixture(scope="module", params=BUILDERS)
def built(request, student):
    return request.param, getattr(student("cnn"), request.param)()


def test_takes_cifar_images(built):
    name, model = built
    problems = checks.check_input_shape(model, f"{name}()")
    assert not problems, "\n".join(problems)


def test_output_shape_after_every_stage(built):
    name, model = built
    problems = checks.check_stage_shapes(model, f"{name}()", checks.network(name)["stages"])
    assert not problems, "\n".join(problems)


def test_parameter_counts(built):
    name, model = built
    expected = checks.network(name)
    problems = checks.check_param_counts(model, f"{name}()", expected["stages"], expected["total_params"])
    assert not problems, "\n".join(problems)


def test_matches_the_lessons_network(built):
    name, model = built
    problems = checks.check_matches_lesson(model, f"{name}()", name)
    assert not problems, "\n".join(problems)


def test_uses_the_lessons_layers(built):
    name, model = built
    call = f"{name}()"
    problems = (checks.check_gap_head(model, call, checks.network(name)["stages"])
                + checks.check_max_pooling(model, call) + checks.check_nonlinearity(model, call)
                + checks.check_rescaling(model, call))
    assert not problems, "\n".join(problems)


def test_outputs_logits(built):
    name, model = built
    problems = checks.check_logits(model, f"{name}()", checks.network(name)["outputs"])
    assert not problems, "\n".join(problems)


def test_augmentation_inside_the_model(built, student):
    name, model = built
    block = student("augmentation").build_augmentation()  # its own settings are judged in test_augmentation.py
    problems = checks.check_augmentation_inside(model, f"{name}()", block)
    assert not problems, "\n".join(problems)


def test_augmentation_is_the_identity_at_inference(built):
    name, model = built
    problems = checks.check_model_identity_at_inference(model, f"{name}()", checks.random_batch(size=4))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", BUILDERS)
def test_respects_num_classes(student, name):
    model = getattr(student("cnn"), name)(num_classes=5)
    problems = checks.check_num_classes(model, f"{name}(num_classes=5)", 5)
    assert not problems, "\n".join(problems)
