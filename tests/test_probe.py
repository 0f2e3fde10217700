"""Tests for the probe on well-behaved submissions: the reference, the stubs, one file, tf.keras."""

import base64
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402  (the environment variable must be set first)

from grader.lesson.manifest import API, BUILDERS, SHAPE_MATH  # noqa: E402
from grader.protocol import (  # noqa: E402
    MISSING,
    NOT_IMPLEMENTED,
    OK,
    ProbeResult,  # noqa: E402
)
from grader.sandbox import Limits, run_probe  # noqa: E402
from grader.untrusted.weights import set_seeded_weights  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
NUM_CLASSES = 7
SEED = 123

SHAPE_MATH_CALLS = {
    "conv_output_size": [[[32, 3], {}], [[32, 3], {"strides": 2, "padding": "same"}], [[32, 3], {"padding": "bad"}]],
    "pool_output_size": [[[32], {}], [[15, 3], {"strides": 2}]],
    "conv_params": [[[3, 3, 32], {}], [[3, 128, 256], {"use_bias": False}]],
    "dense_params": [[[128, 10], {}]],
    "head_params": [[[[4, 4, 128], 10, "gap"], {}], [[[4, 4, 128], 10, "flatten"], {}]],
}
EXPECTED_SHAPE_MATH = {
    "conv_output_size": [{"ok": 30}, {"ok": 16}, {"error": "ValueError"}],
    "pool_output_size": [{"ok": 16}, {"ok": 7}],
    "conv_params": [{"ok": 896}, {"ok": 294912}],
    "dense_params": [{"ok": 1290}],
    "head_params": [{"ok": 1290}, {"ok": 20490}],
}


def filters_model():
    """Return a small Functional model with augmentation in front of its first Conv2D."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def probe_images():
    """Return two deterministic uint8 images."""
    return np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)


def make_request():
    """Return a request like the checker's: shape math calls, num_classes and the filters model."""
    images = probe_images()
    return {
        "shape_math": SHAPE_MATH_CALLS,
        "num_classes": NUM_CLASSES,
        "filters": {"model_config": filters_model().to_json(), "weights_seed": SEED,
                    "images": {"dtype": "uint8", "shape": list(images.shape),
                               "base64": base64.b64encode(images.tobytes()).decode("ascii")}},
    }


def decode(value):
    """Return the numpy array of a probe array value."""
    spec = value["array"]
    return np.frombuffer(base64.b64decode(spec["base64"]), dtype=spec["dtype"]).reshape(spec["shape"])


def assert_shape_math_correct(result):
    """Check every shape-math value against the lesson's numbers."""
    for name in SHAPE_MATH:
        outcome = result.outcome(name)
        assert outcome.status == OK, (name, outcome.message)
        for got, expected in zip(outcome.value, EXPECTED_SHAPE_MATH[name], strict=True):
            if "error" in expected:
                assert got["error"].startswith(expected["error"]), got
            else:
                assert got == expected and type(got["ok"]) is int


@pytest.fixture(scope="module")
def request_data():
    return make_request()


@pytest.fixture(scope="module")
def solutions_result(request_data):
    return run_probe(SOLUTIONS, request_data)


def test_solutions_every_function_ok(solutions_result):
    assert isinstance(solutions_result, ProbeResult)
    assert solutions_result.import_status == OK, solutions_result.import_message
    assert {name: solutions_result.outcome(name).status for name in API} == {name: OK for name in API}


def test_solutions_shape_math_values(solutions_result):
    assert_shape_math_correct(solutions_result)


def test_solutions_error_names_the_student_file_and_line(solutions_result):
    error = solutions_result.outcome("conv_output_size").value[2]["error"]
    # the student's file, line and the line's code
    assert re.fullmatch(r"ValueError: padding must be 'valid' or 'same'\. Received: padding='bad' "
                        r"\(shape_math\.py:\d+: raise ValueError\(.*\)\)", error)


@pytest.mark.parametrize("name, params, classes", [("build_cnn", 140_714, 10), ("build_cnn_v2", 437_162, 10)])
def test_solutions_configs_rebuild(solutions_result, name, params, classes):
    value = solutions_result.outcome(name).value
    model = keras.models.model_from_json(value["config"])
    assert model.count_params() == params
    assert model.output_shape == (None, classes)
    assert keras.models.model_from_json(value["config_num_classes"]).output_shape == (None, NUM_CLASSES)


def test_solutions_augmentation_config(solutions_result):
    config = json.loads(solutions_result.outcome("build_augmentation").value["config"])
    assert config["config"]["name"] == "augmentation"
    classes = [layer["class_name"] for layer in config["config"]["layers"]]
    assert classes == ["RandomFlip", "RandomRotation", "RandomZoom"]


def test_solutions_filters_match_the_checkers_own_computation(solutions_result, request_data):
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference_filters", SOLUTIONS / "filters.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    model = set_seeded_weights(keras.models.model_from_json(request_data["filters"]["model_config"]), SEED)
    filters = decode(solutions_result.outcome("first_layer_filters").value)
    maps = decode(solutions_result.outcome("feature_maps").value)
    np.testing.assert_allclose(filters, reference.first_layer_filters(model), rtol=1e-5)
    np.testing.assert_allclose(maps, reference.feature_maps(model, probe_images()), rtol=1e-4, atol=1e-5)
    assert filters.shape == (3, 3, 3, 8) and maps.shape == (2, 32, 32, 8)


def test_solutions_folder_is_not_written_to(solutions_result):
    assert not list(SOLUTIONS.glob("__pycache__/*.cpython-*-probe*"))
    assert not (SOLUTIONS / "keras.json").exists()


def test_exercise_stubs_are_not_implemented(tmp_path, request_data):
    # The stubs are made from the solutions, as the kit makes exercises/ (which may be mid-edit in a checkout).
    from grader.lesson.stubs import STUB_MODULES, make_stub

    for module in STUB_MODULES:
        (tmp_path / module).write_text(make_stub((SOLUTIONS / module).read_text()))
    result = run_probe(tmp_path, request_data)
    assert result.import_status == OK, result.import_message
    for name in API:
        outcome = result.outcome(name)
        assert outcome.status == NOT_IMPLEMENTED, (name, outcome)
        assert outcome.message.startswith(f"{name}() is not implemented yet.")


def single_file_source():
    """Return the reference solutions as one file, as a student might hand them in."""
    parts = [(SOLUTIONS / f"{module}.py").read_text() for module in ("shape_math", "augmentation", "cnn", "filters")]
    return "\n".join(parts).replace("from augmentation import build_augmentation\n", "")


def test_single_file_submission(tmp_path, request_data):
    (tmp_path / "submission.py").write_text(single_file_source())
    result = run_probe(tmp_path, request_data)
    assert {name: result.outcome(name).status for name in API} == {name: OK for name in API}
    assert_shape_math_correct(result)


TF_KERAS_SUBMISSION = '''
from tensorflow import keras
from tensorflow.keras import layers


def build_augmentation():
    return keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.05),
                             layers.RandomZoom(0.1)], name="augmentation")


def build_cnn(num_classes=10):
    model = keras.Sequential([keras.Input(shape=(32, 32, 3)), build_augmentation(), layers.Rescaling(1.0 / 255)])
    for filters in (32, 32, "pool", 64, 64, "pool", 128, "pool"):
        if filters == "pool":
            model.add(layers.MaxPooling2D((2, 2)))
        else:
            model.add(layers.Conv2D(filters, (3, 3), padding="same"))
            model.add(layers.ReLU())
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(num_classes))
    return model
'''


def test_tensorflow_keras_submission(tmp_path, request_data):
    (tmp_path / "cnn.py").write_text(TF_KERAS_SUBMISSION)
    result = run_probe(tmp_path, request_data)
    assert result.import_status == OK, result.import_message
    for name in BUILDERS[:2]:
        assert result.outcome(name).status == OK, result.outcome(name).message
    model = keras.models.model_from_json(result.outcome("build_cnn").value["config"])
    assert model.count_params() == 140_714
    assert result.outcome("build_cnn_v2").status == MISSING
    assert result.outcome("build_cnn_v2").message == "the submission does not define build_cnn_v2()"
    assert result.outcome("conv_params").status == MISSING


def test_limits_defaults():
    limits = Limits()
    assert (limits.import_seconds, limits.function_seconds, limits.total_seconds) == (60, 60, 180)
    assert (limits.memory_bytes, limits.output_chars) == (4 * 2**30, 20_000)


def test_notebook_that_trains_at_top_level_is_probed_without_training(tmp_path, request_data):
    import nbformat

    from grader.submission import prepare

    cells = ["!pip install tensorflow", single_file_source(),
             "(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()",
             "model = build_cnn()\nmodel.compile('adam', 'sparse_categorical_crossentropy')\n"
             "history = model.fit(x_train, y_train, epochs=20)"]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    nbformat.write(notebook, str(tmp_path / "lesson6.ipynb"))
    result = run_probe(prepare(tmp_path / "lesson6.ipynb", tmp_path / "scratch"), request_data)
    assert {name: result.outcome(name).status for name in API} == {name: OK for name in API}
    assert "Epoch" not in result.output and "Downloading" not in result.output


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_each_filters_function_gets_the_seeded_weights(tmp_path, request_data):
    """The probe builds the filters model once; what first_layer_filters assigns must not reach feature_maps."""
    source = (SOLUTIONS / "filters.py").read_text().replace(
        "    kernels = np.asarray(first_conv.get_weights()[0])\n",
        "    kernels = np.asarray(first_conv.get_weights()[0])\n"
        "    first_conv.kernel.assign(np.zeros_like(kernels))  # vandalises the model it was given\n")
    assert "vandalises" in source
    (tmp_path / "filters.py").write_text(source)
    result = run_probe(tmp_path, request_data)
    reference = run_probe(SOLUTIONS, request_data)
    assert result.outcome("feature_maps").status == OK
    np.testing.assert_array_equal(decode(result.outcome("feature_maps").value),
                                  decode(reference.outcome("feature_maps").value))
    np.testing.assert_array_equal(decode(result.outcome("first_layer_filters").value),
                                  decode(reference.outcome("first_layer_filters").value))



WRAPPED_BUILDERS = """

_lesson_cnn, _lesson_cnn_v2 = build_cnn, build_cnn_v2


def build_cnn(num_classes=10):
    from keras.src.backend.common.stateless_scope import in_stateless_scope
    print(f"build_cnn: without weights: {in_stateless_scope()}")
    return _lesson_cnn(num_classes)


def build_cnn_v2(num_classes=10):
    from keras.src.backend.common.stateless_scope import in_stateless_scope
    print(f"build_cnn_v2: without weights: {in_stateless_scope()}")
    model = _lesson_cnn_v2(num_classes)
    model.compile("adam", "sparse_categorical_crossentropy")  # creates variables: needs real weights
    return model
"""


def test_builders_run_without_weights_and_a_builder_that_compiles_is_built_again(tmp_path, request_data):
    """Configs are built in keras.StatelessScope (no weights); a builder that needs variables gets a second, plain
    run, and what its failed first run printed is dropped."""
    (tmp_path / "submission.py").write_text(single_file_source() + WRAPPED_BUILDERS)
    result = run_probe(tmp_path, request_data)
    assert {name: result.outcome(name).status for name in API} == {name: OK for name in API}
    printed = [line for line in result.output.splitlines() if "without weights" in line]
    assert printed == ["build_cnn: without weights: True"] * 2 + ["build_cnn_v2: without weights: False"] * 2
    assert keras.models.model_from_json(result.outcome("build_cnn").value["config"]).count_params() == 140_714
    assert keras.models.model_from_json(result.outcome("build_cnn_v2").value["config"]).count_params() == 437_162


def test_the_filters_model_sent_to_the_probe_is_the_lesson_s_network_with_its_seeded_weights():
    """The probe's copy has Zeros initializers (cheaper to build); once seeded, it is the lesson's network exactly."""
    from grader.checker.hidden_tests.cases import FILTERS_WEIGHTS_SEED, filters_model_config
    from tests.probe_in_process import import_submission

    lesson = import_submission(ROOT / "solutions")["cnn"].build_cnn()  # the reference, as the checker derives it
    sent = keras.models.model_from_json(filters_model_config())
    assert "GlorotUniform" not in filters_model_config() and "GlorotUniform" in lesson.to_json()
    assert [type(layer).__name__ for layer in sent.layers] == [type(layer).__name__ for layer in lesson.layers]
    assert sent.count_params() == lesson.count_params() == 140_714
    for got, want in zip(set_seeded_weights(sent, FILTERS_WEIGHTS_SEED).get_weights(),
                         set_seeded_weights(lesson, FILTERS_WEIGHTS_SEED).get_weights()):
        np.testing.assert_array_equal(got, want)


MATPLOTLIB_USER = '''
import sys

print("loaded before the submission: keras", "keras" in sys.modules, "matplotlib", "matplotlib" in sys.modules)

import keras  # noqa: E402
import numpy as np  # noqa: E402

keras.visualization.plot_image_gallery(np.zeros((2, 8, 8, 3)), rows=1, cols=2, path="gallery.png")
import matplotlib.pyplot as plt  # noqa: E402

print("gallery drawn with", type(plt.gcf()).__name__)
'''


@pytest.mark.parametrize("child", ["fresh", "zygote"])
@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_keras_comes_without_matplotlib_and_a_submission_still_gets_it_whole(tmp_path, request_data, child):
    """The runner imports Keras less the pyplot it loads for keras.visualization (0.8 s); the submission's own
    matplotlib and Keras's plotting helper work as usual, in a fresh child and in a zygote's."""
    from grader.sandbox.zygote import Zygote

    (tmp_path / "submission.py").write_text(single_file_source() + MATPLOTLIB_USER)
    zygote = Zygote() if child == "zygote" else None
    try:
        result = run_probe(tmp_path, request_data, zygote=zygote)
    finally:
        if zygote is not None:
            zygote.close()
    assert result.import_status == OK, result.import_message
    assert {name: result.outcome(name).status for name in API} == {name: OK for name in API}
    lines = result.output.splitlines()
    # a fresh child leaves matplotlib to the submission; a zygote has it ready for every child
    assert f"loaded before the submission: keras True matplotlib {child == 'zygote'}" in lines
    assert "gallery drawn with Figure" in lines


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_grader_grade_prints_no_tensorflow_startup_line(tmp_path):
    import subprocess
    import sys

    from grader.checker.checks.output import without_tensorflow_startup

    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    control = subprocess.run([sys.executable, "-c", "import tensorflow as tf; tf.zeros(1).numpy()"], cwd=tmp_path,
                             env=environment, capture_output=True, text=True, timeout=300, check=False)
    if without_tensorflow_startup(control.stderr) == control.stderr:
        pytest.skip(f"TensorFlow prints no start-up line on this machine, so there is nothing to keep out: "
                    f"{control.stderr[-500:]!r}")
    (tmp_path / "shape_math.py").write_text("def conv_output_size(n, kernel_size, strides=1, padding='valid'):\n"
                                            "    return 0\n")
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / "shape_math.py"), "--no-training"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    startup = [line for line in done.stderr.splitlines(keepends=True) if not without_tensorflow_startup(line)]
    assert startup == [] and "cuInit" not in done.stderr, done.stderr  # a batch worker's log has none either


def runner_processes(workdir):
    """Return the pids of running processes that run the probe's runner in workdir."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"runner.py" in Path(f"/proc/{pid}/cmdline").read_bytes() and Path(f"/proc/{pid}/cwd").resolve() == \
                    Path(workdir).resolve():
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_a_fresh_child_is_running_while_its_request_is_computed(request_data, solutions_result, tmp_path):
    # grader grade hands run_probe the function that derives the request from the lesson's reference (Keras, seconds):
    # the child starts first and imports Keras meanwhile.
    seen = []

    def request():
        seen.append(runner_processes(tmp_path))
        return request_data

    result = run_probe(SOLUTIONS, request, workdir=tmp_path)
    assert seen and seen[0], "expected the probe's child to run while its request was computed"
    assert {name: (o.status, o.value) for name, o in result.outcomes.items()} == {
        name: (o.status, o.value) for name, o in solutions_result.outcomes.items()}


def test_a_request_that_cannot_be_computed_leaves_no_child(tmp_path):
    running = []

    def request():
        running.extend(runner_processes(tmp_path))
        raise RuntimeError("the lesson's reference failed")

    with pytest.raises(RuntimeError, match="reference failed"):
        run_probe(SOLUTIONS, request, workdir=tmp_path)
    assert running, "expected the child to have started"
    assert runner_processes(tmp_path) == []
