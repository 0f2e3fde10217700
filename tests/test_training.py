"""The training check: its budget, its calibration record, and one real run on the reference and a broken model."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from grader.training import calibration, check

KIT_ROOT = Path(__file__).resolve().parents[1]
SHORT = check.Budget(n_train=160, n_test=250, epochs=1, batch_size=16)  # 10 steps: what a run computes, not learning
# A short run of the reference (argv[1]) that prints what two runs must share to the bit; a script's last lines.
SHORT_RUN = (
    "from grader.training import check\n"
    f"outcome = check.run_training_check(open(sys.argv[1]).read(), seed=1, threshold=0.5, budget=check.{SHORT!r})\n"
    "print(repr((outcome.accuracy, outcome.history, outcome.first_kernel.tobytes().hex())))\n"
)


@pytest.fixture(scope="module")
def configs():
    return calibration.model_configs()


@pytest.fixture(scope="module")
def reference_outcome(configs):
    return check.run_training_check(configs["reference"], seed=0)


@pytest.mark.parametrize(
    "values, expected",
    [([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [1.5, 3.5, 5.5, 7.5, 9.5, 11.5]), ([1, 2, 3], [1, 2, 3])],
)
def test_history_is_the_mean_of_each_part_of_the_run(values, expected):
    assert check._in_parts(values) == expected


def test_fingerprint_names_the_whole_budget():
    fingerprint = check.fingerprint("synthetic", seed=3)
    budget = check.BUDGETS["synthetic"]
    assert fingerprint["seed"] == 3 and fingerprint["dataset"] == "synthetic"
    assert (fingerprint["n_train"], fingerprint["epochs"], fingerprint["batch_size"]) == (
        budget.n_train,
        budget.epochs,
        budget.batch_size,
    )
    # When a run stops early changes every outcome that stops: the rule is part of the key.
    assert (fingerprint["stop_accuracy"], fingerprint["stop_window"]) == (budget.stop_accuracy, budget.stop_window)
    assert fingerprint["check_version"] == check.CHECK_VERSION
    assert json.dumps(fingerprint)  # usable as a cache key


def test_budget_trains_at_most_6000_image_steps():
    budget = check.BUDGETS["synthetic"]
    assert budget.n_train * budget.epochs <= 6000


def test_reference_is_the_solution_even_when_another_cnn_is_imported(monkeypatch):
    student_cnn = types.ModuleType("cnn")
    monkeypatch.setitem(sys.modules, "cnn", student_cnn)
    assert calibration._reference_model().count_params() == 140_714
    assert sys.modules["cnn"] is student_cnn


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match=r"Received: dataset='mnist'"):
        check.run_training_check("{}", dataset="mnist")


def test_calibration_record_backs_the_threshold():
    record = json.loads(check.CALIBRATION_PATH.read_text())["synthetic"]
    reference = record["models"]["reference"]
    assert len(reference["accuracies"]) >= 20
    assert check.threshold_for("synthetic") == record["threshold"]
    assert 0.1 < record["threshold"] < reference["min"]
    for name in calibration.BROKEN:
        model = record["models"][name]
        assert model["separable"] == (model["max"] < reference["min"])


def test_calibration_record_was_measured_on_todays_budget():
    record = json.loads(check.CALIBRATION_PATH.read_text())["synthetic"]
    today = {key: value for key, value in check.fingerprint("synthetic").items() if key not in ("threshold", "seed")}
    for key in ("check_version", "n_train", "n_test", "epochs", "batch_size", "learning_rate"):
        assert record["budget"][key] == today[key], key


def test_calibration_record_says_why_this_budget():
    record = json.loads(check.CALIBRATION_PATH.read_text())["synthetic"]
    assert record["choice"] == calibration.CHOICE
    assert record["choice"]["chosen"] and record["choice"]["why"] and record["choice"]["alternatives"]


@pytest.mark.parametrize("name", ["label_destroying_augmentation", "untrainable", "linear"])
def test_threshold_lies_at_least_the_margin_from_every_run(name):
    record = json.loads(check.CALIBRATION_PATH.read_text())["synthetic"]
    reference, broken = record["models"]["reference"], record["models"][name]
    assert min(reference["accuracies"]) - record["threshold"] >= calibration.MIN_MARGIN
    assert record["threshold"] - max(broken["accuracies"]) >= calibration.MIN_MARGIN, broken


@pytest.mark.parametrize(
    "reference, broken, expected",
    [
        ([0.8, 0.9], {"a": [0.1, 0.12], "b": [0.5, 0.6]}, (0.7, 0.1, {"a": True, "b": True})),
        ([0.8, 0.9], {"a": [0.1], "b": [0.85]}, (0.45, 0.35, {"a": True, "b": False})),
    ],
)
def test_recommend_threshold_lies_midway(reference, broken, expected):
    assert calibration.recommend_threshold(reference, broken) == expected


def test_print_summary_flags_inseparable_models(capsys):
    models = {"reference": {"accuracies": [0.8], "min": 0.8, "median": 0.8, "max": 0.8}}
    models["no_rescaling"] = dict(models["reference"], separable=False, reason="its best run reaches the minimum")
    record = {"dataset": "synthetic", "date": "today", "models": models, "threshold": 0.45, "margin": 0.35}
    calibration.print_summary(record)
    assert "NOT SEPARABLE: its best run reaches the minimum" in capsys.readouterr().out


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_reference_passes(reference_outcome):
    outcome = reference_outcome
    assert outcome.passed, f"reference accuracy {outcome.accuracy:.3f} is below the threshold {outcome.threshold}"
    assert len(outcome.history["loss"]) == len(outcome.history["accuracy"]) == check.HISTORY_POINTS
    # The run starts near chance and ends well above it.
    assert outcome.history["accuracy"][0] < 0.5 < outcome.history["accuracy"][-1]
    assert outcome.first_kernel.shape == (3, 3, 3, 32)
    assert outcome.device in ("CPU", "GPU")
    assert outcome.feature_maps.shape == (32, 32, 32)  # the first Conv2D's output for one 32x32 image
    # It learns before the budget's end, and the run stops there (Budget.stop_accuracy).
    budget = check.BUDGETS["synthetic"]
    assert budget.stop_window * budget.batch_size <= outcome.images < budget.n_train * budget.epochs
    assert "first_kernel" not in outcome.to_dict() and "feature_maps" not in outcome.to_dict()


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_memory_savings_change_no_outcome(configs, monkeypatch):
    """Training on the uint8 set and evaluating 100 images a call give what a float32 copy and calls of 500 gave."""
    budget = SHORT
    today = check.run_training_check(configs["reference"], seed=1, threshold=0.5, budget=budget)
    load_split = check.load_split

    def as_float32(*args):
        x_train, y_train, x_test, y_test = load_split(*args)
        return x_train.astype("float32"), y_train, x_test, y_test

    monkeypatch.setattr(check, "load_split", as_float32)
    monkeypatch.setattr(check, "EVAL_BATCH_SIZE", 500)
    before = check.run_training_check(configs["reference"], seed=1, threshold=0.5, budget=budget)
    assert (today.accuracy, today.history) == (before.accuracy, before.history)
    assert (today.first_kernel == before.first_kernel).all()


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_building_the_optimizer_first_traces_the_step_once_and_changes_no_outcome(configs, monkeypatch):
    import keras

    budget = SHORT
    traces, train_step = [], keras.Model.train_step

    def counted(model, data):
        traces.append(model)  # a traced function calls the Python step only while it is traced
        return train_step(model, data)

    monkeypatch.setattr(keras.Model, "train_step", counted)
    today = check.run_training_check(configs["reference"], seed=1, threshold=0.5, budget=budget)
    assert len(traces) == 1
    monkeypatch.setattr(check, "_build_optimizer", lambda model: None)
    before = check.run_training_check(configs["reference"], seed=1, threshold=0.5, budget=budget)
    assert len(traces) == 3  # left to fit, the optimizer's variables are made in a first trace that is thrown away
    assert (today.accuracy, today.history) == (before.accuracy, before.history)
    assert (today.first_kernel == before.first_kernel).all()


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
@pytest.mark.parametrize(("stop_accuracy", "images"), [(None, 160), (1.01, 160), (0.0, 48)])
def test_a_run_stops_once_its_last_steps_reach_the_stop_accuracy(configs, stop_accuracy, images):
    """10 steps of 16: no rule, or one no run can meet, takes all 10; a rule every step meets stops after the window."""
    budget = check.Budget(n_train=160, n_test=100, epochs=1, batch_size=16, stop_accuracy=stop_accuracy, stop_window=3)
    outcome = check.run_training_check(configs["reference"], seed=1, threshold=0.5, budget=budget)
    assert outcome.images == images
    assert len(outcome.history["accuracy"]) == min(check.HISTORY_POINTS, images // 16)


def in_a_fresh_process(script, configs, tmp_path, *args):
    """Run script in a fresh Python (from the kit's root) with the reference's JSON config as argv[1]; return stdout."""
    model_path = tmp_path / "model.json"
    model_path.write_text(configs["reference"])
    result = subprocess.run([sys.executable, "-c", script, str(model_path), *args], cwd=KIT_ROOT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_two_malloc_arenas_change_no_outcome(configs, tmp_path):
    """The grader's processes limit glibc to two arenas (grader/malloc.py): where buffers live, not what is computed."""
    script = (
        "import sys\n"
        "if sys.argv[2] == 'limited':\n"
        "    from grader.malloc import limit_arenas; limit_arenas()\n"
        + SHORT_RUN
    )
    printed = [in_a_fresh_process(script, configs, tmp_path, mode).splitlines()[-1] for mode in ("limited", "default")]
    assert printed[0] == printed[1]


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_returning_freed_memory_changes_no_outcome(configs, tmp_path):
    """The mmap thresholds the check sets move where buffers live, not what is computed (fresh process: they stick)."""
    script = (
        "import sys; from grader.training import check\n"
        f"budget = check.{SHORT!r}\n"
        "run = lambda: check.run_training_check(open(sys.argv[1]).read(), seed=1, threshold=0.5, budget=budget)\n"
        "fixing = check._mmap_threshold\n"
        "check._mmap_threshold = lambda size: None\n"
        "before = run()\n"
        "check._mmap_threshold = fixing\n"
        "after = run()\n"
        "print((before.accuracy, before.history) == (after.accuracy, after.history), "
        "bool((before.first_kernel == after.first_kernel).all()))\n"
    )
    assert in_a_fresh_process(script, configs, tmp_path).split()[-2:] == ["True", "True"]


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_untrainable_model_fails(configs):
    outcome = check.run_training_check(configs["untrainable"], seed=0)
    assert not outcome.passed
    assert outcome.accuracy < 0.2


def test_linear_model_fails(configs):
    # One template per class cannot find a shape that moves around the image; a CNN can.
    outcome = check.run_training_check(configs["linear"], seed=0)
    assert not outcome.passed, f"linear model reached {outcome.accuracy:.3f}, threshold {outcome.threshold}"
    assert outcome.first_kernel is None


@pytest.mark.slow
def test_vertical_flips_in_the_augmentation_fail(configs):
    outcome = check.run_training_check(configs["label_destroying_augmentation"], seed=0)
    assert not outcome.passed, f"accuracy {outcome.accuracy:.3f}, threshold {outcome.threshold}"
    budget = check.BUDGETS["synthetic"]
    assert outcome.images == budget.n_train * budget.epochs  # never near stop_accuracy: the whole budget


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_same_input_gives_the_same_outcome_in_a_fresh_process(configs, tmp_path):
    """A fresh process trains to the same bits as this one: accuracy, history and the trained first kernel.

    A short run (10 steps) suffices: a kernel that is not run-to-run deterministic differs from its first step on,
    and the full budget would cost ~40 s more.
    """
    budget = SHORT
    here = check.run_training_check(configs["reference"], seed=1, threshold=0.5, budget=budget)
    fresh = in_a_fresh_process("import sys\n" + SHORT_RUN, configs, tmp_path).splitlines()[-1]
    assert fresh == repr((here.accuracy, here.history, here.first_kernel.tobytes().hex()))


def test_first_layer_feature_maps_run_the_first_conv_without_augmentation():
    import keras

    inputs = keras.Input((8, 8, 3))
    flipped = keras.layers.RandomFlip("horizontal")(inputs)
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(flipped)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(conv)))
    image = np.random.default_rng(2).integers(0, 255, (8, 8, 3)).astype("uint8")
    maps = check.first_layer_feature_maps(model, image)
    kernel, bias = model.layers[2].get_weights()
    padded = np.pad(image.astype("float64"), ((1, 1), (1, 1), (0, 0)))
    expected = np.zeros((8, 8, 4))
    for row in range(8):
        for column in range(8):
            expected[row, column] = np.tensordot(padded[row:row + 3, column:column + 3], kernel, axes=3) + bias
    np.testing.assert_allclose(maps, np.maximum(expected, 0), rtol=1e-4, atol=1e-3)
