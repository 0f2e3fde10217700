"""Visible tests for convnet.py: Chollet's shape table and parameter counts, checked by meaning."""

import lesson_checks as checks
import pytest

NAME = "build_convnet"
CALL = f"{NAME}()"


@pytest.fixture(scope="module")
def model(student):
    return getattr(student("convnet"), NAME)()


def test_takes_mnist_images(model):
    problems = checks.check_input_shape(model, CALL)
    assert not problems, "\n".join(problems)


def test_output_shape_after_every_stage(model):
    problems = checks.check_stage_shapes(model, CALL, checks.network(NAME)["stages"])
    assert not problems, "\n".join(problems)


def test_parameter_counts(model):
    expected = checks.network(NAME)
    problems = checks.check_param_counts(model, CALL, expected["stages"], expected["total_params"])
    assert not problems, "\n".join(problems)


def test_matches_the_lessons_network(model):
    problems = checks.check_matches_lesson(model, CALL, NAME)
    assert not problems, "\n".join(problems)


def test_uses_the_lessons_layers(model):
    problems = checks.check_max_pooling(model, CALL) + checks.check_nonlinearity(model, CALL)
    assert not problems, "\n".join(problems)


def test_outputs_probabilities(model):
    problems = checks.check_softmax_output(model, CALL, checks.network(NAME)["outputs"])
    assert not problems, "\n".join(problems)


def test_respects_num_classes(student):
    model = getattr(student("convnet"), NAME)(num_classes=5)
    problems = checks.check_num_classes(model, f"{NAME}(num_classes=5)", 5)
    assert not problems, "\n".join(problems)
