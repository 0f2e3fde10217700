"""Calibrate the training check: where should the pass threshold sit?

Trains the lesson's reference network (lesson.toml's [training] builder from its solutions/, as a JSON config,
exactly as a submission reaches the check) over many seeds, and known-broken models (variants of it, and a linear
model that a check worth its name must fail) over fewer, then recommends a threshold midway between the reference's
worst run and the best broken run. The record, with the machine it was measured on and a digest of the network, goes to
calibration.json of the lesson folder (the top-level calibration.json for the default lesson); the check
reads its thresholds from there and refuses a record whose network is no longer the reference's.
"""

import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

from grader.lesson.manifest import LESSON_NAME, TRAINING_BUILDER
from grader.training import check

DEFAULT_SEEDS = 20
BROKEN_SEEDS = 10  # broken models sit far from the threshold; ten seeds show their spread
MIN_MARGIN = 0.2  # below this distance from the reference minimum, a threshold is too tight to trust
REFERENCE = "reference"
# Why the budget is what it is (issue 25 asked for a check of <= 6 s alone, ~13 s at this budget): the alternatives'
# figures, measured on the 2-core machine under a load of 14-24, then 2-10 in a second session (CPU seconds;
# benchmarks/README.md has the tables).
CHOICE = {
    "chosen": (
        "at most 6,000 image-steps: 6,000 fresh images once, 375 steps of 16, Adam 1e-3, one train_on_batch per "
        "step; since 2026-12-04 the run stops once the last 25 steps' images (400, each seen for the first time) "
        "were 97 % right, and the held-out accuracy is measured there: the lesson's network stops after 177-310 "
        "steps (254 on average), a model that does not learn takes the whole budget. Since 2026-12-03 the optimizer "
        "is built before training (the step is traced once)"
    ),
    "why": (
        "no smaller fixed budget kept a margin of 0.2 on both sides: the label-destroying model reaches ~0.5, so the "
        "reference's worst seed must stay above ~0.9, and every budget with 2,400-3,200 image-steps had seeds "
        "at 0.50-0.90 among its first 3-6; no setting cut the CPU per image-step by more than the noise (~10 %); "
        "the run spends its first ~50 steps at chance whatever the batch, rate, shape size or contrast, then learns "
        "at a step that differs from seed to seed, and late in a run the held-out accuracy still swings by up to "
        "0.25 from one step to the next. Stopping once the fresh images' accuracy is high ends each run where it has "
        "learned, not where the slowest seed has, and measures it at a good moment rather than wherever step 375 "
        "falls: about two thirds of the steps; broken models never reach 97 % and keep the whole budget, so their "
        "side of the margin is unchanged"
    ),
    "alternatives": {
        "2,400 images, batch 16, Adam 2e-3 (seeds 0-5)": (
            "held-out 0.572 0.680 0.838 0.952 0.900 0.504; 14.6-16.5 CPU-s"
        ),
        "2,400 images, batch 16, Adam 3e-3 (seeds 0-5)": "held-out 0.078 0.098 0.662 0.762 0.736 0.368",
        "2,400 images, batch 8, Adam 1e-3 (seeds 0-5)": "held-out 0.826 0.988 0.880 0.956 0.986 0.832; 15.9-18.2 CPU-s",
        "3,200 images, batch 8, Adam 1e-3 (seeds 0-5)": (
            "held-out 0.934 0.956 0.996 1.000 0.934 0.904; 19.6-22.8 CPU-s, against 34.3-34.8 for this budget: "
            "~8 s alone, and a worst seed in 6 close to the ~0.9 that the margins need"
        ),
        "1,600 images, one thread, per-image CPU (seed 0)": (
            "batch 16 11.4 CPU-s; batch 32 11.4; batch 64 11.5; tf.data pipeline 11.4; jit_compile=True 10.2 with "
            "the same accuracy to the last digit (Keras turns XLA off: the augmentation layers do not support it); "
            "without augmentation 10.2; without augmentation, with XLA 17.7 (compile time)"
        ),
        "fused steps, one inter-op thread (last session)": "no CPU saved",
        "2,000 images, batch 16, Adam 1e-3, 500 test images (seeds 0-5, second session)": (
            "held-out 0.736 0.836 0.306 0.638 0.824 0.422; 14.3-15.9 CPU-s at load 2.5-4.8"
        ),
        "1,600 images, batch 4 (seeds 0-3)": (
            "held-out 0.932 0.974 0.898 0.324; 13.4-14.4 CPU-s against 12.0-12.7 at batch 16"
        ),
        "1,600 images, Adam 5e-4 (seeds 0-3)": "held-out 0.106 0.274 0.454 0.496: a smaller rate is slower too",
        "1,600 images, shapes ~40 % larger (half size 7-10 px, seeds 0-5)": (
            "held-out 0.458 0.902 0.794 0.704 0.890 0.668: the same ~800 images at chance"
        ),
        "1,200 images, shapes 250-255 on 0-5, no noise (seeds 0-3)": "held-out 0.406 0.608 0.546 0.310",
        "TF_ENABLE_ONEDNN_OPTS=0 (800 images, seeds 1, 1, 2)": "7.2-8.3 CPU-s against 6.7-7.5 with oneDNN",
        "several small copies of the shape per image, batch 16 (seeds 0-3, 2026-12-04, quiet machine)": (
            "four copies, one per quadrant, half size 3-4.5 px: 1,600 images held-out 0.760 0.794 0.742 0.842, "
            "800 images 0.110 0.110 0.122 0.092 (4.5-5.0 s wall, so ~2.5 s of a check is fixed); batch 4, 1,200 "
            "images (seeds 0-5): 0.142 0.916 0.890 0.094 0.728 0.918; nine or sixteen copies, 1,000 images: 0.09-0.37. "
            "More evidence per image does not shorten the ~50 steps at chance"
        ),
        "stopping early (seeds 0-6 and 10, whole runs, held-out accuracy of 400 images every 4 steps from step 140)": (
            "mean accuracy of the last 25 steps >= 0.95: stops after 217 steps on average, held-out there down to "
            "0.818; >= 0.95 over 50 steps: 261 steps, down to 0.858; >= 0.97 over 25 steps (chosen): 254 steps "
            "(177-310), held-out 0.978-1.000; >= 0.98 over 50 steps: 296 steps, 0.970-1.000. After step 250 the "
            "held-out accuracy of these seeds dips to 0.750-0.940 at some step, though their step-375 values are "
            "0.985-1.000. The check alone at >= 0.95: 13.2-13.8 s wall and ~21 CPU-s, against 23.9 s and 36 CPU-s "
            "for the whole budget. With fit and stop_training, one calibration hung in its 28th stopped run, in "
            "TensorFlow's input pipeline; train_on_batch has none"
        ),
        "fixed cost of a check (one step of 16, seeds 0-2)": (
            "3.3-3.9 CPU-s, of which tracing the training step 2.6-2.9 (traced twice, now once), and 1.7 CPU-s "
            "per 1,000 evaluated images"
        ),
    },
    "machines": (
        "the same budget and seeds calibrated on two 2-core machines on 2026-12-04: an AMD EPYC (AVX2) gave the "
        "reference 0.961-0.999 and the best broken run 0.487 (threshold 0.724, checks of 9.9-17.2 s); an Intel Xeon "
        "with AVX-512 (this record) gave 0.914-1.000 and 0.484 (checks of 3.2-4.9 s). oneDNN's kernels round "
        "differently, so a seed learns at another step; the linear and untrainable models gave the same accuracies "
        "on both. The record in force is the Xeon's: its threshold 0.699 keeps at least 0.2 on both sides on both "
        "machines (0.262 and 0.212 on the EPYC's runs, 0.215 and 0.215 here), where 0.724 left 0.190 to the "
        "Xeon's worst reference seed. Re-run `grader calibrate` where the class is graded and compare"
    ),
}
BROKEN = {
    "no_rescaling": "the Rescaling layer removed: raw 0-255 pixels reach the first Conv2D",
    "label_destroying_augmentation": (
        'augmentation RandomFlip("horizontal_and_vertical") + RandomRotation(0.5) (+ RandomZoom(0.1)) in place of '
        "the lesson's, which turn class 2k into 2k+1"
    ),
    "untrainable": "every layer trainable=False: the weights stay at their initial values",
    "linear": "Input -> (the lesson's Rescaling) -> Flatten -> Dense(classes): one template per class, no convolution",
}


def _reference_model():
    """Return the lesson's trained network (lesson.toml's [training] builder), built from its reference solutions."""
    from grader.checker.reference import import_reference, reference_files
    from grader.lesson.manifest import HOME_MODULE, TRAINING_BUILDER

    missing = [path for path in reference_files() if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Calibration trains the lesson's reference, expected at {missing[0]}; run it from a checkout of the "
            "kit (or with --lesson FOLDER), not from an installed grader."
        )
    # The reference is imported by path, with modules of the same names imported earlier (a student's) set aside.
    return getattr(import_reference()[HOME_MODULE[TRAINING_BUILDER]], TRAINING_BUILDER)()


def _fresh_chain(model):
    """Return fresh copies of the layers of a linear model, the input layer left out."""
    return [type(layer).from_config(layer.get_config()) for layer in model.layers[1:]]


def _is_augmentation_block(layer):
    """Return whether a layer is a random augmentation layer or a block made only of them."""
    from grader.checker.checks.models import is_augmentation

    inner = getattr(layer, "layers", None)
    return is_augmentation(layer) or bool(inner) and all(is_augmentation(found) for found in inner)


def model_configs():
    """Return {name: model JSON} for the reference and every broken variant in BROKEN that applies to it."""
    import keras
    from keras import layers

    shape, classes, from_logits = check.lesson_data()
    reference = _reference_model()

    def sequential(chain):
        return keras.Sequential([keras.Input(shape=shape), *chain], name=reference.name).to_json()

    rescalers = [layer for layer in reference.layers if isinstance(layer, layers.Rescaling)]
    destroying = [
        keras.Sequential(
            [layers.RandomFlip("horizontal_and_vertical"), layers.RandomRotation(0.5), layers.RandomZoom(0.1)],
            name="augmentation",
        ),
        *[layer for layer in _fresh_chain(reference) if not _is_augmentation_block(layer)],
    ]
    untrainable = _fresh_chain(reference)
    for layer in untrainable:
        layer.trainable = False
    # Passes the check only if the data can be learnt without translation-tolerant features.
    head = layers.Dense(classes) if from_logits else layers.Dense(classes, activation="softmax")
    linear = [*([layers.Rescaling(float(rescalers[0].scale))] if rescalers else []), layers.Flatten(), head]
    configs = {REFERENCE: reference.to_json()}
    if rescalers:
        configs["no_rescaling"] = sequential([layer for layer in _fresh_chain(reference)
                                              if not isinstance(layer, layers.Rescaling)])
    configs["label_destroying_augmentation"] = sequential(destroying)
    configs["untrainable"] = sequential(untrainable)
    configs["linear"] = sequential(linear)
    return configs


def _summary(accuracies):
    """Return min, median and max of a list of accuracies."""
    return {"min": min(accuracies), "median": statistics.median(accuracies), "max": max(accuracies)}


def recommend_threshold(reference, broken):
    """Return (threshold, margin, separable) from reference accuracies and {name: accuracies} of broken models.

    A broken model is separable when its best run stays below the reference's worst run. The threshold lies
    midway between the reference minimum and the best separable broken run; margin is the distance to either.
    """
    floor = min(reference)
    separable = {name: max(accuracies) < floor for name, accuracies in broken.items()}
    best_broken = max((max(broken[name]) for name in broken if separable[name]), default=0.1)
    threshold = (floor + best_broken) / 2
    return round(threshold, 4), round(floor - threshold, 4), separable


def _machine(device):
    """Return where the calibration ran, for the record."""
    import keras
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "device": device,
    }


def calibrate(*, seeds=DEFAULT_SEEDS, dataset="synthetic", broken_seeds=BROKEN_SEEDS, out=None, log=print):
    """Train the reference over `seeds` seeds and broken models over `broken_seeds`; return and write the record."""
    if seeds < 1 or broken_seeds < 1:
        raise ValueError(f"Calibration needs at least one seed. Received: seeds={seeds}, broken_seeds={broken_seeds}")
    configs = model_configs()
    runs = {}
    for name, model_json in configs.items():
        count = seeds if name == REFERENCE else broken_seeds
        runs[name] = []
        for seed in range(count):
            outcome = check.run_training_check(model_json, dataset=dataset, seed=seed, threshold=0.0)
            runs[name].append(outcome)
            log(f"{name:30s} seed {seed:2d}: accuracy {outcome.accuracy:.3f} in {outcome.seconds:.1f} s")

    accuracies = {name: [round(o.accuracy, 4) for o in outcomes] for name, outcomes in runs.items()}
    broken = {name: accuracies[name] for name in BROKEN if name in accuracies}
    threshold, margin, separable = recommend_threshold(accuracies[REFERENCE], broken)
    seconds = [o.seconds for o in runs[REFERENCE]]
    record = {
        "dataset": dataset,
        "budget": {key: value for key, value in check.fingerprint(dataset).items() if key not in ("threshold", "seed")},
        "threshold": threshold,
        "margin": margin,
        # The trained network the threshold was measured on: the check refuses the record once the reference's differs.
        "lesson": LESSON_NAME,
        "network": check.network_digest(),
        "network_source": check.network_source(),  # the same network, recognised without building it
        "rule": "midway between the reference minimum and the best broken run that stays below it",
        "choice": CHOICE,
        "models": {
            name: {
                "description": BROKEN.get(name, f"the reference's {TRAINING_BUILDER}(), as JSON"),
                "seeds": list(range(len(accuracies[name]))),
                "accuracies": accuracies[name],
                **_summary(accuracies[name]),
                **({} if name == REFERENCE else {"separable": separable[name]}),
                **({} if name == REFERENCE else {"margin": round(threshold - max(accuracies[name]), 4)}),
                **(
                    {"reason": "its best run reaches the reference minimum; the threshold cannot catch it"}
                    if name != REFERENCE and not separable[name]
                    else {}
                ),
            }
            for name in configs
        },
        "reference_seconds": _summary([round(s, 2) for s in seconds]),
        "warnings": [] if margin >= MIN_MARGIN else [f"margin {margin} is below {MIN_MARGIN}: the check is fragile"],
        "machine": _machine(runs[REFERENCE][0].device),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _write(record, out)
    return record


def default_output():
    """Return where calibration writes: the calibration.json of the lesson being graded."""
    from grader.lesson.manifest import lesson_dir

    return lesson_dir() / check.CALIBRATION_FILE


def _write(record, out=None):
    """Store record under its data set in the calibration file, keeping the other data sets' entries."""
    path = Path(out) if out else default_output()
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing[record["dataset"]] = record
    path.write_text(json.dumps(existing, indent=2) + "\n")


def print_summary(record, file=None):
    """Print a calibration record as a short table: accuracy min/median/max per model, then the threshold."""
    file = file or sys.stdout
    print(f"Training check calibration, dataset={record['dataset']} ({record['date']})", file=file)
    print(f"{'model':30s} {'runs':>4s} {'min':>6s} {'median':>6s} {'max':>6s} {'margin':>6s}", file=file)
    for name, model in record["models"].items():
        note = "" if model.get("separable", True) else "  NOT SEPARABLE: " + model["reason"]
        runs = len(model["accuracies"])
        # A broken model's margin: how far its best run stays below the threshold.
        margin = f"{model['margin']:6.3f}" if "margin" in model else " " * 6
        print(
            f"{name:30s} {runs:4d} {model['min']:6.3f} {model['median']:6.3f} {model['max']:6.3f} {margin}{note}",
            file=file,
        )
    print(f"threshold {record['threshold']:.3f} (margin {record['margin']:.3f} to the reference minimum)", file=file)
    for warning in record.get("warnings", []):
        print(f"warning: {warning}", file=file)
