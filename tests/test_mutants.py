"""Single-mistake variants of the reference: each loses points only where its mistake is, with words naming it.

Every mutant is the reference solutions/ with one small textual edit. Most are graded through the trusted
checker on probe data made in this process from the mutated modules (the probe's own runner functions,
without its sandbox subprocess); a few go end to end through grade(), sandboxed probe included.
"""

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.checker.checks.augmentation import random_batch  # noqa: E402
from grader.checker.checks.preconditions import NO_CONVOLUTION
from grader.checker.hidden_tests.cases import NUM_CLASSES  # noqa: E402
from grader.checker.run import CRASH_MESSAGE  # noqa: E402
from grader.grade import check, grade  # noqa: E402
from grader.lesson.manifest import PARTS  # noqa: E402
from grader.options import NO_TRAINING
from grader.results import FAILED  # noqa: E402
from tests.probe_in_process import functions_of, import_submission, probe_in_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
GRADED_PARTS = tuple(part for part in PARTS if part != "training")  # training=False everywhere here

MODEL_PARTS = ("build_cnn", "build_cnn_v2")
# Both networks call build_augmentation(), but they are judged on using the student's own block (or the lesson's
# where the student's raises): a mistake in the block costs the augmentation part alone.
AUGMENTATION_PARTS = ("augmentation",)

CNN_INPUT = 'inputs = keras.Input(shape=(32, 32, 3))\n'
CNN_AUGMENT = 'x = build_augmentation()(inputs)\n'
CNN_RESCALE = '    x = layers.Rescaling(1.0 / 255)(x)\n'
CONV = 'layers.Conv2D({filters}, 3, padding="same", activation="relu")'
POOL = '    x = layers.MaxPooling2D(2)(x)\n'
HEAD = 'outputs = layers.Dense(num_classes)(x)'
GAP = 'layers.GlobalAveragePooling2D()(x)'
V2_BLOCK = '    x = layers.Conv2D(256, 3, padding="same", activation="relu")(x)\n    x = layers.MaxPooling2D(2)(x)\n'
V2_HEAD = GAP + '\n    ' + HEAD + '\n    return keras.Model(inputs, outputs, name="cifar10_cnn_v2")'
CNN_BODY = CNN_RESCALE + ''.join(                                   # build_cnn from Rescaling to its GAP
    ''.join('    x = ' + CONV.format(filters=f) + '(x)\n' for f in block) + POOL
    for block in ((32, 32), (64, 64), (128,))
) + '    x = ' + GAP + '\n'
V2_BODY = CNN_BODY.replace('    x = ' + GAP, V2_BLOCK + '    x = ' + GAP)
ZOOM = "            layers.RandomZoom(0.1),\n"
AUGMENTATION_BLOCK = '            layers.RandomFlip("horizontal"),\n            layers.RandomRotation(0.05),\n' + ZOOM


@dataclass(frozen=True)
class Mutant:
    """One mistake: replace `old` by `new` in `file` (the first `count` times, 0 for every time)."""

    id: str
    file: str
    old: str
    new: str
    parts: tuple        # the parts that must lose points; every other part keeps full marks
    phrase: str         # words a failed test's message in those parts must contain
    count: int = 1      # cnn.py repeats build_cnn's body in build_cnn_v2: count=1 edits build_cnn only;
                        # count=0 also edits a docstring's copy of the line, which changes nothing
    also: tuple = ()    # a second edit of the same mistake in another file: (file, old, new, count)


MUTANTS = (
    # --- shape math -----------------------------------------------------------------------------------------
    Mutant("same_padding_floor", "shape_math.py", "math.ceil(n / strides)", "math.floor(n / strides)",
           ("shape_math",), "Did you round down"),
    Mutant("pool_stride_ignores_default", "shape_math.py", "strides = pool_size", "strides = 1",
           ("shape_math",), "the stride defaults to pool_size"),
    Mutant("conv_params_without_bias", "shape_math.py", " + (filters if use_bias else 0)", "",
           ("shape_math",), "Did you forget the F biases"),
    Mutant("dense_params_ignores_use_bias", "shape_math.py", "(units if use_bias else 0)", "units",
           ("shape_math",), "use_bias=False"),
    Mutant("head_flatten_channels_only", "shape_math.py", "features = height * width * channels",
           "features = channels", ("shape_math",), "height*width*channels"),
    # --- augmentation (build_cnn and build_cnn_v2 call build_augmentation, but are judged on their own) --------
    Mutant("flip_horizontal_and_vertical", "augmentation.py", 'RandomFlip("horizontal")',
           'RandomFlip("horizontal_and_vertical")', AUGMENTATION_PARTS, "vertical flips destroy CIFAR-10 labels",
           count=0),
    Mutant("flip_vertical", "augmentation.py", 'RandomFlip("horizontal")', 'RandomFlip("vertical")',
           AUGMENTATION_PARTS, "Use RandomFlip('horizontal')", count=0),
    Mutant("rotation_half_turn", "augmentation.py", "RandomRotation(0.05)", "RandomRotation(0.5)",
           AUGMENTATION_PARTS, "RandomRotation has factor=0.5", count=0),
    Mutant("no_random_zoom", "augmentation.py", "            layers.RandomZoom(0.1),\n", "",
           AUGMENTATION_PARTS, "no RandomZoom"),
    Mutant("extra_random_grayscale", "augmentation.py", ZOOM,
           ZOOM + "            layers.RandomGrayscale(factor=1.0),\n",
           AUGMENTATION_PARTS, "The augmentation also has RandomGrayscale"),
    Mutant("vertical_flip_only", "augmentation.py", AUGMENTATION_BLOCK, '            layers.RandomFlip("vertical"),\n',
           AUGMENTATION_PARTS, "Use RandomFlip('horizontal')"),
    Mutant("rotation_in_degrees", "augmentation.py", "RandomRotation(0.05)", "RandomRotation(18)",
           AUGMENTATION_PARTS, "A factor is a fraction of a full turn, not degrees: 18 degrees is 0.05.", count=0),
    Mutant("rescaling_inside_augmentation", "augmentation.py", ZOOM,
           ZOOM + "            layers.Rescaling(1.0 / 255),\n",
           ("augmentation",) + MODEL_PARTS, "The augmentation block also holds Rescaling",  # cnn.py lost its own
           also=("cnn.py", CNN_RESCALE, "", 0)),
    # --- build_cnn: parameter counts and shapes unchanged ------------------------------------------------------
    Mutant("no_rescaling", "cnn.py", CNN_RESCALE, "", ("build_cnn",), "no Rescaling(1/255)"),
    Mutant("rescaling_scale_one", "cnn.py", "Rescaling(1.0 / 255)", "Rescaling(1.0)", ("build_cnn",),
           "The Rescaling layer has scale=1.0"),
    Mutant("rescaling_before_augmentation", "cnn.py", CNN_AUGMENT + CNN_RESCALE,
           'x = layers.Rescaling(1.0 / 255)(inputs)\n    x = build_augmentation()(x)\n', ("build_cnn",),
           "Rescaling comes before the augmentation"),
    Mutant("softmax_output", "cnn.py", HEAD, 'outputs = layers.Dense(num_classes, activation="softmax")(x)',
           ("build_cnn",), "The model ends in a softmax"),
    Mutant("conv_without_relu", "cnn.py", CONV.format(filters=64),
           'layers.Conv2D(64, 3, padding="same")', ("build_cnn",), "has no activation"),
    Mutant("average_pooling", "cnn.py", "layers.MaxPooling2D(2)(x)", "layers.AveragePooling2D(2)(x)",
           ("build_cnn",), "The model uses AveragePooling2D"),
    Mutant("augmentation_training_true", "cnn.py", CNN_AUGMENT, 'x = build_augmentation()(inputs, training=True)\n',
           ("build_cnn",), "is called with training=True"),
    Mutant("no_augmentation_in_model", "cnn.py", CNN_AUGMENT + CNN_RESCALE,
           'x = layers.Rescaling(1.0 / 255)(inputs)\n', ("build_cnn",), "There are no augmentation layers"),
    Mutant("dense_ignores_num_classes", "cnn.py", HEAD, "outputs = layers.Dense(10)(x)", ("build_cnn",),
           "use Dense(num_classes)"),
    Mutant("relu_head", "cnn.py", HEAD, 'outputs = layers.Dense(num_classes, activation="relu")(x)',
           ("build_cnn",), "The model ends in a relu activation"),
    Mutant("rescaling_twice", "cnn.py", CNN_RESCALE, CNN_RESCALE * 2, ("build_cnn",), "has 2 Rescaling layers"),
    Mutant("first_conv_dilated", "cnn.py", CONV.format(filters=32),
           'layers.Conv2D(32, 3, padding="same", activation="relu", dilation_rate=2)', ("build_cnn",),
           "The first Conv2D has dilation_rate=2; the lesson's uses 1"),
    Mutant("first_conv_frozen", "cnn.py", CONV.format(filters=32),
           'layers.Conv2D(32, 3, padding="same", activation="relu", trainable=False)', ("build_cnn",),
           "The first Conv2D has trainable=False; the lesson's uses True"),
    Mutant("pool_3_stride_2_same", "cnn.py", "layers.MaxPooling2D(2)(x)",
           'layers.MaxPooling2D(3, strides=2, padding="same")(x)', ("build_cnn",),
           "The first MaxPooling2D has pool_size=3; the lesson's uses 2"),
    # settings outside the shown ones (every setting of every layer is compared with the reference's)
    Mutant("first_conv_l2_regularizer", "cnn.py", CONV.format(filters=32),
           'layers.Conv2D(32, 3, padding="same", activation="relu", kernel_regularizer="l2")', ("build_cnn",),
           "The first Conv2D has kernel_regularizer=L2(l2=0.01); the lesson's uses None"),
    Mutant("head_zeros_initializer", "cnn.py", HEAD,
           'outputs = layers.Dense(num_classes, kernel_initializer="zeros")(x)', ("build_cnn",),
           "The Dense has kernel_initializer=Zeros(); the lesson's uses GlorotUniform()"),
    Mutant("first_conv_max_norm", "cnn.py", CONV.format(filters=32),
           'layers.Conv2D(32, 3, padding="same", activation="relu", kernel_constraint=keras.constraints.MaxNorm(1))',
           ("build_cnn",), "The first Conv2D has kernel_constraint=MaxNorm(axis=0, max_value=1); the lesson's uses "
                           "None"),
    Mutant("zoom_fill_constant", "augmentation.py", "layers.RandomZoom(0.1),",
           'layers.RandomZoom(0.1, fill_mode="constant"),',
           AUGMENTATION_PARTS, "The RandomZoom has fill_mode='constant'; the lesson's uses 'reflect'"),
    # --- build_cnn: shape-changing ---------------------------------------------------------------------------
    Mutant("valid_padding_one_conv", "cnn.py", CONV.format(filters=32),
           'layers.Conv2D(32, 3, padding="valid", activation="relu")', ("build_cnn",),
           "Did you use padding='valid'?"),
    Mutant("flatten_instead_of_gap", "cnn.py", GAP, "layers.Flatten()(x)", ("build_cnn",), "The head uses Flatten"),
    Mutant("missing_pool", "cnn.py", POOL + '    x = layers.Conv2D(64', '    x = layers.Conv2D(64', ("build_cnn",),
           "Did you forget a MaxPooling2D(2)?"),
    Mutant("wrong_filter_count", "cnn.py", CONV.format(filters=128),
           'layers.Conv2D(96, 3, padding="same", activation="relu")', ("build_cnn",),
           "It has 96 filters; the lesson uses 128"),
    Mutant("input_28x28", "cnn.py", CNN_INPUT, 'inputs = keras.Input(shape=(28, 28, 3))\n', ("build_cnn",),
           "CIFAR-10 images are (None, 32, 32, 3)"),
    Mutant("no_convolution", "cnn.py", CNN_BODY, CNN_RESCALE + "    x = layers.Flatten()(x)\n", ("build_cnn",),
           "Your model has no Conv2D layer"),
    # --- build_cnn_v2 -----------------------------------------------------------------------------------------
    Mutant("v2_block_without_pool", "cnn.py", V2_BLOCK, V2_BLOCK.split("\n")[0] + "\n", ("build_cnn_v2",),
           "Did you forget the new block's pool?"),
    Mutant("v2_without_new_conv", "cnn.py", V2_BLOCK, POOL, ("build_cnn_v2",), "the sixth should have 256 filters"),
    Mutant("v2_pool_before_new_conv", "cnn.py", V2_BLOCK,
           '    x = layers.MaxPooling2D(2)(x)\n    x = layers.Conv2D(256, 3, padding="same", activation="relu")(x)\n',
           ("build_cnn_v2",), "The order is wrong: the lesson has the Conv2D first, then the MaxPooling2D."),
    Mutant("v2_no_convolution", "cnn.py", V2_BODY, CNN_RESCALE + "    x = layers.Flatten()(x)\n", ("build_cnn_v2",),
           "Your model has no Conv2D layer"),
    Mutant("v2_sigmoid_head", "cnn.py", V2_HEAD, V2_HEAD.replace("Dense(num_classes)",
           'Dense(num_classes, activation="sigmoid")'), ("build_cnn_v2",), "The model ends in a sigmoid activation"),
    Mutant("v2_dropout_before_head", "cnn.py", V2_HEAD, V2_HEAD.replace(
           GAP, GAP + "\n    x = layers.Dropout(0.99)(x)"), ("build_cnn_v2",),
           "Your model has an extra Dropout(rate=0.99) after the GlobalAveragePooling2D"),
    # --- the bonus ----------------------------------------------------------------------------------------------
    Mutant("filters_not_normalised", "filters.py", "return (kernels - k_min) / (k_max - k_min + 1e-8)",
           "return kernels", ("filters",), "normalised filter by filter"),
    Mutant("feature_maps_training_true", "filters.py", "probe(images, training=False)",
           "probe(images, training=True)", ("filters",), "Without it the augmentation layers flip and rotate"),
    Mutant("feature_maps_rescales_images", "filters.py", "probe(images, training=False)",
           "probe(images / 255, training=False)", ("filters",),
           "your function rescaled the images, then the model's own Rescaling(1/255) scaled them again"),
)
END_TO_END = ("no_rescaling", "flip_horizontal_and_vertical", "valid_padding_one_conv", "dense_params_ignores_use_bias",
              "v2_block_without_pool")
BY_ID = {mutant.id: mutant for mutant in MUTANTS}
OWN_LINE = "Hello from the student's shape_math.py"


def write_mutant(mutant, folder):
    """Copy the reference into folder with the mutant's one edit; fail if the edit does not apply."""
    shutil.copytree(SOLUTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    edits = [(mutant.file, mutant.old, mutant.new, mutant.count)] + ([mutant.also] if mutant.also else [])
    for file, old, new, count in edits:
        path = folder / file
        text = path.read_text()
        assert old in text, f"{mutant.id}: {old!r} is not in {file}"
        path.write_text(text.replace(old, new, count or -1))
    return folder


def functions_touched(mutant):
    """Return the API functions whose result may change with the mutant's file."""
    module = Path(mutant.file).stem
    return functions_of(module, builders_too=module == "augmentation")  # both networks call build_augmentation()


def assert_loses_only_in(results, mutant):
    """Assert the mutant lost points in exactly its parts, and one failure there names the mistake."""
    scores = results.part_scores()
    lost = sorted(part for part in GRADED_PARTS if scores[part][0] < scores[part][1])
    failures = {part: [test.output for test in results.tests if test.part == part and test.status == FAILED]
                for part in GRADED_PARTS}
    assert lost == sorted(mutant.parts), (mutant.id, scores, failures)
    crashed = CRASH_MESSAGE.split("{")[0]
    assert not [output for outputs in failures.values() for output in outputs if output.startswith(crashed)], failures
    for part in mutant.parts:
        assert any(mutant.phrase in output for output in failures[part]), (mutant.id, part, failures[part])


@pytest.fixture(scope="module")
def reference_probe(tmp_path_factory):
    """Return the in-process probe result of the untouched reference."""
    folder = tmp_path_factory.mktemp("reference") / "solutions"
    shutil.copytree(SOLUTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return probe_in_process(folder)


def test_the_reference_gets_full_marks_through_the_in_process_probe(reference_probe):
    results = check(reference_probe, submission="solutions", options=NO_TRAINING)
    scores = results.part_scores()
    assert all(scores[part][0] == scores[part][1] for part in GRADED_PARTS), scores


def test_the_reference_runs_without_a_warning():
    # Every correct student would otherwise read the reference's warnings under "What your code printed".
    modules = import_submission(SOLUTIONS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = modules["cnn"].build_cnn()
        modules["cnn"].build_cnn_v2()
        modules["filters"].first_layer_filters(model)
        modules["filters"].feature_maps(model, random_batch(size=2))
    assert not [f"{warning.category.__name__}: {warning.message}" for warning in caught]


def test_mutants_cover_the_lesson_s_mistakes():
    assert len(MUTANTS) >= 22 and len(BY_ID) == len(MUTANTS)
    assert {part for mutant in MUTANTS for part in mutant.parts} >= set(GRADED_PARTS) - {"filters"}


@pytest.mark.parametrize("mutant", MUTANTS, ids=[mutant.id for mutant in MUTANTS])
def test_mutant_loses_points_only_where_its_mistake_is(mutant, reference_probe, tmp_path):
    folder = write_mutant(mutant, tmp_path / mutant.id)
    probe = probe_in_process(folder, functions_touched(mutant), reuse=reference_probe)
    assert_loses_only_in(check(probe, submission=mutant.id, options=NO_TRAINING), mutant)


@pytest.mark.parametrize("mutant_id", END_TO_END)
def test_mutant_end_to_end_through_the_sandboxed_probe(mutant_id, tmp_path):
    mutant = BY_ID[mutant_id]
    folder = write_mutant(mutant, tmp_path / mutant.id)
    with (folder / "shape_math.py").open("a") as module:
        module.write(f"\nprint({OWN_LINE!r})\n")
    results = grade(folder, NO_TRAINING)
    assert_loses_only_in(results, mutant)
    # What the student reads under "What your code printed": their own line, none of TensorFlow's start-up lines
    # and no warning from the reference's code.
    assert results.probe_output == OWN_LINE + "\n"


# What a sound grader gives a model that is not the lesson's in a big way: the checks judging the structure it
# lacks fail (none passes vacuously), the checks judging what it does have keep their points. Each entry:
# (part, score in that part, phrases: every failed test there says one of them, and each is said by one).
NO_CONV_SAID = NO_CONVOLUTION.split("{judged}")[0]
VACUOUS = {
    # augmentation -> Rescaling -> Flatten -> Dense: not a CNN, so every check of the network fails with one sentence,
    # even those (input shape, Rescaling, logits, num_classes, augmentation) whose layers it has.
    "no_convolution": ("build_cnn", 0, (NO_CONV_SAID.format(call="build_cnn()"),
                                        NO_CONV_SAID.format(call=f"build_cnn(num_classes={NUM_CLASSES})"))),
    "v2_no_convolution": ("build_cnn_v2", 0, (NO_CONV_SAID.format(call="build_cnn_v2()"),
                                              NO_CONV_SAID.format(call=f"build_cnn_v2(num_classes={NUM_CLASSES})"))),
    # only RandomFlip("vertical"): a Sequential named "augmentation", nothing more. It loses the flip direction and
    # the rotation and zoom; having no parameters, being the identity at inference and changing images in training
    # are judged on the lesson's layers, and it has none of them.
    "vertical_flip_only": ("augmentation", 1, (
        "The augmentation has no RandomRotation; the lesson's block is RandomFlip('horizontal'), RandomRotation(0.05), "
        "RandomZoom(0.1).",
        "RandomFlip uses mode='vertical': vertical flips destroy CIFAR-10 labels",
        "Called build_augmentation(). The block has RandomFlip(mode='vertical'), but none of the lesson's "
        "RandomFlip('horizontal'), RandomRotation(0.05), RandomZoom(0.1)",
    )),
}


@pytest.mark.parametrize("mutant_id", sorted(VACUOUS))
def test_a_model_lacking_the_lesson_s_structure_earns_no_vacuous_points(mutant_id, reference_probe, tmp_path):
    mutant = BY_ID[mutant_id]
    part, points, phrases = VACUOUS[mutant_id]
    probe = probe_in_process(write_mutant(mutant, tmp_path / mutant.id), functions_touched(mutant),
                             reuse=reference_probe)
    results = check(probe, submission=mutant.id, options=NO_TRAINING)
    failures = [test.output for test in results.tests if test.part == part and test.status == FAILED]
    assert results.part_scores()[part][0] == points, (mutant_id, part, results.part_scores()[part], failures)
    assert all(any(phrase in output for phrase in phrases) for output in failures), failures
    assert all(any(phrase in output for output in failures) for phrase in phrases), failures
