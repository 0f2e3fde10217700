"""The training check: does a rebuilt model learn within a short, fixed budget?

The checker hands over a model config it has already validated (built-in layers only). The check rebuilds it with
keras.models.model_from_json, compiles it as the lesson does (Adam 1e-3, sparse categorical cross-entropy on
logits), trains for at most a fixed budget with fixed seeds, and measures accuracy on held-out images. Every
training image is fresh, so each step's accuracy (taken before the step's update) is measured on images the network
has not seen: once the last `stop_window` steps' images were `stop_accuracy` right, the network has learned and the
run stops early (after about two thirds of the budget for the lesson's network). The pass threshold per data set
comes from the recorded calibration (calibration.json, written by grader.training.calibration). The same config and
seed give the same accuracy in a fresh process on the same machine and device; a GPU may differ from the CPU in the
last digits.
"""

import ctypes
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from grader.lesson.manifest import DEFAULT_LESSON
from grader.training import synthetic_shapes

CHECK_VERSION = 3  # bump whenever the budget, the data or the procedure changes, to invalidate caches
DATASETS = ("synthetic", "cifar10")
LEARNING_RATE = 1e-3
# 100 images per evaluation call: 500 held ~150 MiB more at the check's peak; the logits are the same bit for bit.
EVAL_BATCH_SIZE = 100
# glibc's malloc raises its mmap threshold up to 32 MiB as TensorFlow frees large tensors, then keeps the freed blocks
# in its heaps: the check's evaluation left ~100 MiB more resident. A fixed threshold, set for the evaluation only,
# sends blocks of this size or more to mmap, which hands them back when they are freed (benchmarks/README.md, issue 25).
# Not for the training: its per-step buffers (im2col, ~19 MiB) would be mapped anew each step, ~25 % more CPU.
MMAP_THRESHOLD = 4 * 1024 * 1024
WARM_MMAP_THRESHOLD = 32 * 1024 * 1024  # where glibc's own raising ends: later trainings keep their buffers
HISTORY_POINTS = 6  # the history (and the training curve drawn from it) has one point per sixth of the run
CALIBRATION_FILE = "calibration.json"  # a lesson folder's record of its training check
CALIBRATION_PATH = DEFAULT_LESSON / CALIBRATION_FILE  # the default lesson's record (calibration.json at the top level)
RECALIBRATE = ("The training check's calibration in {path} was measured on another network than the lesson's "
               "{builder}() (its reference changed, or the lesson has no calibration.json of its own). Received: a "
               "{dataset!r} record of network {recorded}, but the reference's network is {current}. Run "
               "`grader calibrate --lesson {lesson}` to measure the threshold again, or grade with --no-training.")


def calibration_path():
    """Return the calibration record of the lesson being graded: its folder's calibration.json, else the default's."""
    from grader.lesson.manifest import lesson_dir

    own = lesson_dir() / CALIBRATION_FILE
    return own if own.is_file() else CALIBRATION_PATH


def lesson_data():
    """Return (image shape, classes, from_logits) of the lesson's trained network, derived from its reference."""
    from grader.checker.reference import expectations
    from grader.lesson.manifest import TRAINING_BUILDER

    network = expectations()["networks"][TRAINING_BUILDER]
    return tuple(network["input_shape"]), network["outputs"], network["output_activation"] != "softmax"


def network_digest():
    """Return a short digest of the lesson's trained network (its canonical layers), as calibration records it."""
    import hashlib

    from grader.checker.reference import expectations
    from grader.lesson.manifest import TRAINING_BUILDER

    network = expectations()["networks"][TRAINING_BUILDER]
    described = json.dumps({"input_shape": network["input_shape"], "layers": network["layers"]}, default=repr,
                           sort_keys=True)
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def network_source():
    """Return a short digest of what the trained network is built from: the reference's sources, the lesson's
    trained builder and the installed Keras. Read without importing Keras or building a model (milliseconds)."""
    import hashlib
    from importlib.metadata import version

    from grader.checker.reference import fingerprint
    from grader.lesson.manifest import TRAINING_BUILDER

    described = json.dumps([fingerprint(), TRAINING_BUILDER, version("keras")])
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def calibration_problem(dataset="synthetic", path=None):
    """Return why the recorded calibration cannot be used for the lesson's trained network ('' if it can).

    A record whose network_source is the current one was measured on this very network, known without importing
    Keras (so `grader grade` starts its probe at once); otherwise the reference's network, as the lesson's
    expectations describe it (recorded in expectations.json, or derived), is compared.
    """
    from grader.lesson.manifest import TRAINING_BUILDER, lesson_dir

    path = Path(path or calibration_path())
    record = json.loads(path.read_text()).get(dataset, {}) if path.is_file() else {}
    recorded = record.get("network")
    if recorded is None or record.get("network_source") == network_source() or recorded == network_digest():
        return ""
    return RECALIBRATE.format(path=path, builder=TRAINING_BUILDER, dataset=dataset, recorded=recorded,
                              current=network_digest(), lesson=lesson_dir())


@dataclass(frozen=True)
class Budget:
    """How much data and training one check gets, and when a run that has learned stops early.

    stop_accuracy: the run stops once the images of its last stop_window steps were at least this fraction right
    (measured before each step's update, on images the network had not seen); None: every run takes the whole budget.
    """

    n_train: int
    n_test: int
    epochs: int
    batch_size: int
    stop_accuracy: float | None = None
    stop_window: int = 25


# 6,000 image-steps on the synthetic set: 6,000 fresh images seen once, in 375 steps of 16 (times: benchmarks/).
# The set (synthetic_shapes.py) has one light shape on a dark background, so the lesson's network leaves chance
# after 1,200-1,600 images (75-100 steps of 16); the earlier set (four copies in random colours) held it there
# for ~8,000 images (125-150 steps of 64) and needed 20,000 image-steps. Batch 16 gives twice the steps of batch 32
# for the same images and reached a higher worst seed in trials (3 seeds: 0.994 vs 0.965); their cost per image
# differed by less than the noise of a loaded machine. One pass over fresh images rather than epochs over fewer:
# every step sees new shapes. The record in calibration.json shows the spread. The lesson's network gets 97 % of
# the last 400 images (25 steps) right after 177-310 of the 375 steps (8 seeds; 254 on average), and its held-out
# accuracy is measured there, at a moment it has learned, not wherever step 375 falls (held-out accuracy swings by
# up to 0.25 between steps late in a run). A model that does not learn never gets there and takes the whole budget.
# calibration.CHOICE has the measurements.
BUDGETS = {
    "synthetic": Budget(n_train=6000, n_test=1000, epochs=1, batch_size=16, stop_accuracy=0.97, stop_window=25),
    "cifar10": Budget(n_train=8000, n_test=2000, epochs=2, batch_size=64),
}


def _load_thresholds(path=None):
    """Return {dataset: threshold} from the lesson's calibration record, or {} where there is none."""
    path = path or calibration_path()
    if not path.exists():
        return {}
    record = json.loads(path.read_text())
    return {name: entry["threshold"] for name, entry in record.items() if entry.get("threshold") is not None}


THRESHOLDS = _load_thresholds()


@dataclass
class TrainingOutcome:
    """What one training check measured; first_kernel is the trained first Conv2D kernel (3, 3, 3, F).

    history holds the mean training loss and accuracy over each of HISTORY_POINTS equal parts of the run;
    images is how many training images the run saw before it ended (fewer than the budget's when it stopped early).
    """

    accuracy: float
    threshold: float
    passed: bool
    history: dict
    seconds: float
    device: str
    dataset: str
    seed: int
    images: int = 0
    first_kernel: np.ndarray = field(default=None, repr=False)
    feature_maps: np.ndarray = field(default=None, repr=False)  # first Conv2D's output for the first test image

    def to_dict(self):
        """Return the outcome as JSON-ready data, without the arrays."""
        data = asdict(self)
        del data["first_kernel"], data["feature_maps"]
        return data


def _check_dataset(dataset):
    """Raise ValueError unless dataset is one the check knows."""
    if dataset not in DATASETS:
        raise ValueError(f"The training check knows the data sets {DATASETS}. Received: dataset={dataset!r}")


def threshold_for(dataset):
    """Return the calibrated pass threshold (held-out accuracy) for a data set."""
    _check_dataset(dataset)
    if dataset not in THRESHOLDS:
        raise LookupError(
            f"No calibrated threshold for dataset={dataset!r} in {calibration_path()}. "
            f"Run `grader calibrate --dataset {dataset}` first."
        )
    return THRESHOLDS[dataset]


def fingerprint(dataset="synthetic", seed=0):
    """Return everything the check's result depends on besides the model, for a cache key."""
    import keras
    import tensorflow as tf

    _check_dataset(dataset)
    return {
        "check_version": CHECK_VERSION,
        "dataset": dataset,
        "seed": seed,
        **asdict(BUDGETS[dataset]),
        "learning_rate": LEARNING_RATE,
        "threshold": THRESHOLDS.get(dataset),
        "device": device_name(),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
    }


def device_name():
    """Return "GPU" when TensorFlow sees a GPU, else "CPU"."""
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


def load_split(dataset, seed, budget):
    """Return (x_train, y_train, x_test, y_test) for one check: uint8 images and int labels."""
    _check_dataset(dataset)
    if dataset == "synthetic":
        # One draw, split in two: the test images come from the same distribution but are never trained on.
        shape, classes, _from_logits = lesson_data()
        images, labels = synthetic_shapes.make_dataset(budget.n_train + budget.n_test, seed, shape, classes)
        return images[: budget.n_train], labels[: budget.n_train], images[budget.n_train :], labels[budget.n_train :]
    from grader.training.cifar10 import load_cifar10

    (x_train, y_train), (x_test, y_test) = load_cifar10()
    pick = np.random.default_rng(seed).choice(len(x_train), size=budget.n_train, replace=False)
    # The test subset is fixed, so accuracies from different seeds are comparable.
    return x_train[pick], y_train[pick].ravel(), x_test[: budget.n_test], y_test[: budget.n_test].ravel()


def first_conv_kernel(model):
    """Return the kernel of the model's first Conv2D (nested models included), or None."""
    from grader.checker.checks.filters import first_conv

    try:
        return np.asarray(first_conv(model).get_weights()[0])
    except StopIteration:
        return None


def _seed_everything(seed):
    """Seed Python, NumPy, TensorFlow and Keras; make GPU kernels deterministic where a GPU is used."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    # CPU kernels are already run-to-run deterministic here (verified in tests/test_training.py); on a GPU,
    # cuDNN picks non-deterministic algorithms unless told not to.
    if device_name() == "GPU":
        tf.config.experimental.enable_op_determinism()


def _mmap_threshold(size):
    """Fix glibc's mmap threshold at size bytes and its heap trim threshold at twice that. Elsewhere, pass."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, size)  # M_MMAP_THRESHOLD; setting it ends the dynamic raising, for the rest of the process
        libc.mallopt(-1, 2 * size)  # M_TRIM_THRESHOLD, as the dynamic raising would set it
    except (OSError, AttributeError, TypeError):
        pass  # not glibc (macOS, Windows): nothing to set


def _build_optimizer(model):
    """Create the optimizer's variables before fit, so that Keras traces the training step once, not twice.

    Left to fit, Adam makes its variables inside the first trace of the step, which TensorFlow then throws away and
    traces again: ~1.5 of a check's ~25 CPU-s, on one thread. The outcome is the same to the last bit (tested).
    """
    model.optimizer.build(model.trainable_variables)


def _train(model, x_train, y_train, budget, seed):
    """Train the compiled model one batch at a time; return ({"loss": [...], "accuracy": [...]} per step, images).

    Each pass over the images takes them in an order drawn from the seed. A step's loss and accuracy are its own
    batch's, computed before its update: on fresh images, a measurement on images the network has not seen. The run
    stops once the last stop_window steps reached the budget's stop_accuracy (see Budget). train_on_batch, not fit:
    a run can end after any step without leaving a tf.data iterator half-read (with fit and stop_training, TensorFlow
    2.21 hung in a later check, once in ~30 stopped runs).
    """
    order = np.random.default_rng(seed)
    steps, images = {"loss": [], "accuracy": []}, 0
    window = budget.stop_window
    for _epoch in range(budget.epochs):
        shuffled = order.permutation(len(x_train))
        for first in range(0, len(shuffled), budget.batch_size):
            batch = shuffled[first : first + budget.batch_size]
            logs = model.train_on_batch(x_train[batch], y_train[batch], return_dict=True)
            images += len(batch)
            for name, values in steps.items():
                values.append(float(logs[name]))
            recent = steps["accuracy"][-window:]
            if budget.stop_accuracy is not None and len(recent) == window and np.mean(recent) >= budget.stop_accuracy:
                return steps, images
    return steps, images


def _in_parts(values, parts=HISTORY_POINTS):
    """Return the means of `values` over `parts` consecutive, nearly equal parts."""
    return [float(np.mean(part)) for part in np.array_split(np.asarray(values, dtype=np.float64), parts) if len(part)]


def first_layer_feature_maps(model, image):
    """Return the first Conv2D's output (height, width, filters) for one uint8 image, augmentation off."""
    from grader.checker.checks.filters import first_conv_outputs

    return first_conv_outputs(model, np.asarray(image)[None])[0]


def run_training_check(model_json, *, dataset="synthetic", seed=0, threshold=None, budget=None):
    """Train a model rebuilt from its JSON config for the fixed budget; return a TrainingOutcome."""
    import keras

    start = time.perf_counter()
    _check_dataset(dataset)
    budget = budget or BUDGETS[dataset]
    threshold = threshold_for(dataset) if threshold is None else threshold
    x_train, y_train, x_test, y_test = load_split(dataset, seed, budget)

    _seed_everything(seed)
    model = keras.models.model_from_json(model_json)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        # Logits unless the lesson's network ends in a softmax (its reference says which).
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=lesson_data()[2]),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    _build_optimizer(model)
    with warnings.catch_warnings():
        # A model with nothing to train still runs, and fails the check on its untrained accuracy.
        warnings.filterwarnings("ignore", message="The model does not have any trainable weights")
        # uint8 images: the model's float32 Input casts each batch exactly, and a float32 copy of the whole set
        # would add ~70 MiB to the check's peak.
        steps, images = _train(model, x_train, y_train, budget, seed)
    history = {name: _in_parts(values) for name, values in steps.items()}
    _mmap_threshold(MMAP_THRESHOLD)
    # Plain calls, not model.predict: a fresh predict function per check makes TF warn about retracing.
    logits = np.concatenate(
        [
            np.asarray(model(x_test[first : first + EVAL_BATCH_SIZE].astype("float32"), training=False))
            for first in range(0, len(x_test), EVAL_BATCH_SIZE)
        ]
    )
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == y_test))
    try:  # the lesson's feature-map panel; a model without a top-level Conv2D simply has none
        feature_maps = first_layer_feature_maps(model, x_test[0])
    except Exception:
        feature_maps = None
    _mmap_threshold(WARM_MMAP_THRESHOLD)

    return TrainingOutcome(
        accuracy=accuracy,
        threshold=threshold,
        passed=accuracy >= threshold,
        history=history,
        seconds=time.perf_counter() - start,
        device=device_name(),
        dataset=dataset,
        seed=seed,
        images=images,
        first_kernel=first_conv_kernel(model),
        feature_maps=feature_maps,
    )
