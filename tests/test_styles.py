"""Correct submissions in other styles than the reference: every one gets full marks.

The design promises full marks for the Functional or Sequential API, `import keras` or `from tensorflow import
keras`, any layer names, kernel_size=(3, 3), relu inside Conv2D or as its own layer, three modules or one file,
a notebook, a zip and a repository. Variants of the code are graded on in-process probe data (as in
test_mutants.py); variants of the submission's form go end to end through grade(), sandboxed probe included.
"""

import os
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.grade import check, grade  # noqa: E402
from grader.lesson.manifest import (
    MODULE_FILES,
    PARTS,  # noqa: E402
)
from grader.options import NO_TRAINING
from grader.results import FAILED  # noqa: E402
from tests.probe_in_process import probe_in_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
GRADED_PARTS = tuple(part for part in PARTS if part != "training")  # training=False everywhere here
# Printed by the notebook's top-level cells: grading must run none of them (a download, hours of training).
NOTEBOOK_TOP_LEVEL_OUTPUT = ("Downloading CIFAR-10", "Training for 20 epochs", "Total params", "best val acc")
ONE_FILE_GREETING = "Lesson 6 submission loaded"  # what the probe prints is shown: proof the check above can see it

SEQUENTIAL_CNN = '''"""The lesson's networks with the Sequential API."""

import keras
from keras import layers

from augmentation import build_augmentation


def conv_stack(widths):
    """Return the conv blocks: two convs per width except the last, a MaxPooling2D(2) after each block."""
    stack = []
    for index, width in enumerate(widths):
        repeats = 2 if index < 2 else 1
        stack += [layers.Conv2D(width, 3, padding="same", activation="relu") for _ in range(repeats)]
        stack.append(layers.MaxPooling2D(2))
    return stack


def build_cnn(num_classes=10):
    return keras.Sequential(
        [keras.Input(shape=(32, 32, 3)), build_augmentation(), layers.Rescaling(1.0 / 255)]
        + conv_stack([32, 64, 128])
        + [layers.GlobalAveragePooling2D(), layers.Dense(num_classes)],
        name="cifar10_cnn",
    )


def build_cnn_v2(num_classes=10):
    return keras.Sequential(
        [keras.Input(shape=(32, 32, 3)), build_augmentation(), layers.Rescaling(1.0 / 255)]
        + conv_stack([32, 64, 128, 256])
        + [layers.GlobalAveragePooling2D(), layers.Dense(num_classes)],
        name="cifar10_cnn_v2",
    )
'''

LESSON_AUGMENTATION = '''import keras
from keras import layers

data_augmentation = keras.Sequential(
    [
        layers.RandomFlip("horizontal"),
        layers.RandomRotation(0.05),  # +/-5% of a full turn, about +/-18 degrees
        layers.RandomZoom(0.1),
    ],
    name="augmentation",
)


def build_augmentation():
    return data_augmentation
'''


def reference_text(name):
    return (SOLUTIONS / name).read_text()


def write_modules(folder, **overrides):
    """Write the four modules into folder: the reference's, with some replaced by the given sources."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in MODULE_FILES:
        (folder / name).write_text(overrides.get(name.removesuffix(".py"), reference_text(name)))
    return folder


# --- variants of the code --------------------------------------------------------------------------------------


def sequential_api(folder):
    return write_modules(folder, cnn=SEQUENTIAL_CNN)


def tensorflow_keras(folder):
    """`from tensorflow import keras` in every module."""
    sources = {}
    for name in MODULE_FILES:
        text = reference_text(name).replace("import keras\n", "from tensorflow import keras\n")
        text = text.replace("from keras import layers", "from tensorflow.keras import layers")
        sources[name.removesuffix(".py")] = text
    return write_modules(folder, **sources)


def custom_layer_names(folder):
    """A name= on every layer, input and model (the augmentation block keeps the name the lesson gives it)."""
    counter = iter(range(1, 100))

    def named(match):
        kind, args, tail = match.groups()
        return f'layers.{kind}({args}{", " if args else ""}name="my_{kind.lower()}_{next(counter)}"){tail}'

    layer_call = re.compile(r"layers\.(\w+)\(([^()]*)\)(\(|,)")
    cnn = layer_call.sub(named, reference_text("cnn.py"))
    cnn = cnn.replace("keras.Input(shape=(32, 32, 3))", 'keras.Input(shape=(32, 32, 3), name="pixels")')
    cnn = cnn.replace('name="cifar10_cnn"', 'name="my_network"')
    cnn = cnn.replace('name="cifar10_cnn_v2"', 'name="my_deeper_network"')
    augmentation = layer_call.sub(named, reference_text("augmentation.py"))
    assert cnn.count('name="my_') > 20 and augmentation.count('name="my_') == 3
    return write_modules(folder, cnn=cnn, augmentation=augmentation)


def kernel_size_tuple(folder):
    cnn = re.sub(r"Conv2D\((\d+), 3,", r"Conv2D(\1, kernel_size=(3, 3),", reference_text("cnn.py"))
    assert cnn.count("kernel_size=(3, 3)") >= 11
    return write_modules(folder, cnn=cnn)


def relu_as_layers(folder):
    """ReLU() after every Conv2D of build_cnn, Activation("relu") after every Conv2D of build_cnn_v2."""
    first, second = reference_text("cnn.py").split("def build_cnn_v2")
    inline = ', activation="relu")(x)'
    first = first.replace(inline, ")(x)\n    x = layers.ReLU()(x)")
    second = second.replace(inline, ')(x)\n    x = layers.Activation("relu")(x)')
    assert first.count("layers.ReLU()") == 5 and second.count('Activation("relu")') == 6
    return write_modules(folder, cnn=first + "def build_cnn_v2" + second)


def lesson_text_augmentation(folder):
    """A module-level data_augmentation Sequential, called in build_cnn exactly as the lesson writes it."""
    cnn = reference_text("cnn.py").replace("from augmentation import build_augmentation",
                                           "from augmentation import data_augmentation")
    cnn = cnn.replace("x = build_augmentation()(inputs)", "x = data_augmentation(inputs)  # identity at inference time")
    assert cnn.count("data_augmentation(inputs)") == 2
    return write_modules(folder, cnn=cnn, augmentation=LESSON_AUGMENTATION)


CODE_STYLES = {
    "sequential_api": sequential_api,
    "from_tensorflow_import_keras": tensorflow_keras,
    "custom_layer_names": custom_layer_names,
    "kernel_size_tuple": kernel_size_tuple,
    "relu_as_separate_layers": relu_as_layers,
    "lesson_text_data_augmentation": lesson_text_augmentation,
}


# --- variants of the submission's form --------------------------------------------------------------------------


def one_file_source():
    """Return the four reference modules as one module (cnn.py's import of augmentation dropped)."""
    parts = [reference_text(name).replace("from augmentation import build_augmentation\n", "") for name in MODULE_FILES]
    return "\n\n".join(parts)


def one_file(folder):
    folder.mkdir(parents=True)
    path = folder / "lesson6.py"
    path.write_text(f"print({ONE_FILE_GREETING!r})\n\n" + one_file_source())
    return path


def notebook(folder):
    """A Colab-style notebook: the functions, plus the lesson's download, 20 epochs of training and a summary."""
    cells = [
        nbformat.v4.new_markdown_cell("# Lesson 6 — CNNs in Keras"),
        nbformat.v4.new_code_cell("!nvidia-smi\n%load_ext autoreload\nimport math\n\nimport keras\n"
                                  "import numpy as np\nimport tensorflow as tf\nfrom keras import layers"),
        nbformat.v4.new_code_cell('print("Downloading CIFAR-10")\n'
                                  "(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()\n"
                                  "print(x_train.shape, x_train.dtype, y_train.shape)"),
        nbformat.v4.new_code_cell("train_ds = (\n    tf.data.Dataset.from_tensor_slices((x_train, y_train))\n"
                                  "    .shuffle(10_000)\n    .batch(128)\n    .prefetch(tf.data.AUTOTUNE)\n)\n"
                                  "val_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(256)"),
    ]
    for name in MODULE_FILES:
        source = reference_text(name).replace("from augmentation import build_augmentation\n", "")
        source = source.replace("import keras\n", "").replace("from keras import layers\n", "")
        cells.append(nbformat.v4.new_code_cell(source.replace("import math\n", "").replace("import numpy as np\n", "")))
    cells += [
        nbformat.v4.new_code_cell("model = build_cnn()\nmodel.summary()"),
        nbformat.v4.new_code_cell(
            "model.compile(\n    optimizer=keras.optimizers.Adam(1e-3),\n"
            "    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),\n"
            '    metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],\n)\n'
            'print("Training for 20 epochs")\n'
            "history = model.fit(train_ds, validation_data=val_ds, epochs=20)"),
        nbformat.v4.new_code_cell('print("best val acc:", max(history.history["val_acc"]))\n'
                                  "filters = first_layer_filters(model)\nmaps = feature_maps(model, x_test[:1])"),
    ]
    folder.mkdir(parents=True)
    path = folder / "Lesson6.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))
    return path


def zipped_folder(folder):
    shutil.copytree(SOLUTIONS, folder / "my_submission", ignore=shutil.ignore_patterns("__pycache__"))
    path = folder / "my_submission.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted((folder / "my_submission").iterdir()):
            archive.write(file, f"my_submission/{file.name}")
    return path


def repository(folder):
    """A clone of the student release with the solutions copied into exercises/."""
    shutil.copytree(ROOT / "exercises", folder / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
    for name in MODULE_FILES:
        shutil.copyfile(SOLUTIONS / name, folder / "exercises" / name)
    (folder / "README.md").write_text("# My lesson 6 work\n")
    (folder / "pyproject.toml").write_text('[project]\nname = "my-lesson6"\n')
    return folder


FORM_STYLES = {
    "one_py_file": one_file,
    "notebook_that_downloads_and_trains": notebook,
    "zip_of_a_folder": zipped_folder,
    "repository_with_exercises": repository,
}


def assert_full_marks(results, style):
    """Assert every graded part got full marks, showing the failures otherwise."""
    scores = results.part_scores()
    failures = [f"{test.name}: {test.output}" for test in results.tests if test.status == FAILED]
    full = all(scores[part][0] == scores[part][1] > 0 for part in GRADED_PARTS)
    assert full, (style, scores, failures, results.notes)


@pytest.mark.parametrize("style", CODE_STYLES)
def test_code_style_gets_full_marks(style, tmp_path):
    folder = CODE_STYLES[style](tmp_path / style)
    assert_full_marks(check(probe_in_process(folder), submission=style, options=NO_TRAINING), style)


@pytest.mark.parametrize("style", FORM_STYLES)
def test_submission_form_gets_full_marks(style, tmp_path):
    path = FORM_STYLES[style](tmp_path / style)
    results = grade(path, NO_TRAINING)
    assert_full_marks(results, style)
    if style == "one_py_file":
        assert ONE_FILE_GREETING in results.probe_output
    if style.startswith("notebook"):
        ran = [text for text in NOTEBOOK_TOP_LEVEL_OUTPUT if text in results.probe_output]
        assert not ran, (ran, results.probe_output)


def test_styles_cover_the_design_s_promises():
    assert len(CODE_STYLES) + len(FORM_STYLES) >= 7


# --- the comparison's list of what is style (grader.checker.checks.comparison.STYLE): one network per entry -----------


def lesson_network(style=None, change=None):
    """Return the lesson's build_cnn spelled with one style of checks.STYLE (or with one real change)."""
    import keras
    from keras import layers

    seeded = style == "seeds"
    named = style == "names"
    extra = {"dtype": "float32"} if style == "float32 spelled out" else {}
    block = [layers.RandomFlip("horizontal", seed=1 if seeded else None, **extra),
             layers.RandomRotation(0.05, seed=2 if seeded else None, **extra),
             layers.RandomZoom(0.1, seed=3 if seeded else None,
                               fill_mode="constant" if change == "fill_mode" else "reflect", **extra)]
    inputs = keras.Input(shape=(32, 32, 3))
    if style == "nesting":
        x = inputs
        for layer in block:
            x = layer(x)
    else:
        x = keras.Sequential(block, name="augmentation")(inputs)
    x = layers.Rescaling(1.0 / 255, name="scale" if named else None)(x)
    for index, item in enumerate((32, 32, "pool", 64, 64, "pool", 128, "pool")):
        if item == "pool":
            if style == "explicit defaults":
                x = layers.MaxPooling2D(2, strides=2, padding="valid", **extra)(x)
            else:
                x = layers.MaxPooling2D((2, 2) if style == "int vs tuple" else 2, **extra)(x)
            continue
        kwargs = dict(extra)
        if seeded:
            kwargs["kernel_initializer"] = keras.initializers.GlorotUniform(seed=index)
        if style == "explicit defaults":
            kwargs.update(strides=1, dilation_rate=1, use_bias=True, groups=1)
        if change == "kernel_initializer" and index == 0:
            kwargs["kernel_initializer"] = "he_normal"
        size = (3, 3) if style == "int vs tuple" else 3
        if style == "relu as a layer or an argument":
            x = layers.ReLU()(layers.Conv2D(item, size, padding="same", **kwargs)(x))
        else:
            x = layers.Conv2D(item, size, padding="same", activation="relu", name=f"c{index}" if named else None,
                              **kwargs)(x)
    x = layers.GlobalAveragePooling2D(**extra)(x)
    return keras.Model(inputs, layers.Dense(10, **extra)(x), name="mine" if named else None)


@pytest.mark.parametrize("style", sorted(__import__("grader.checker.checks.comparison", fromlist=["STYLE"]).STYLE))
def test_each_style_of_the_comparison_is_the_lesson_s_network(style):
    from grader.checker.checks.augmentation import check_augmentation_layers
    from grader.checker.checks.comparison import check_matches_lesson

    model = lesson_network(style)
    assert check_matches_lesson(model, "build_cnn()", "build_cnn") == [], style
    assert check_augmentation_layers(model, "build_cnn()") == [], style


@pytest.mark.parametrize("change, said", [("kernel_initializer", "kernel_initializer=HeNormal()"),
                                          ("fill_mode", "fill_mode='constant'")])
def test_a_setting_that_is_not_style_is_named(change, said):
    from grader.checker.checks.augmentation import check_augmentation_layers
    from grader.checker.checks.comparison import check_matches_lesson

    # The augmentation's settings are judged once, by the augmentation's check; the rest layer by layer.
    model = lesson_network(change=change)
    problems = (check_augmentation_layers(model, "build_cnn()") if change == "fill_mode"
                else check_matches_lesson(model, "build_cnn()", "build_cnn"))
    assert len(problems) == 1 and said in problems[0], problems
