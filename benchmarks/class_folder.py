"""Make a folder that looks like a class's hand-in: correct submissions in several styles, mistakes, misbehaviour.

Every submission is derived from the reference in solutions/ (so it stays in step with the lesson), in the
shapes students hand in: a folder of modules, one .py file, a notebook, a .zip. The benchmarks and the
batch tests grade these folders.

    python benchmarks/class_folder.py OUT_DIR [--small]
"""

import argparse
import re
import shutil
import zipfile
from pathlib import Path

import nbformat

from grader.lesson.stubs import make_stub

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
MODULES = ("shape_math", "augmentation", "cnn", "filters")

SEQUENTIAL_CNN = '''
from tensorflow import keras
from tensorflow.keras import layers


def _block(filters, convs):
    found = []
    for _ in range(convs):
        found += [layers.Conv2D(filters, kernel_size=(3, 3), padding="same"), layers.ReLU()]
    return found + [layers.MaxPooling2D(pool_size=(2, 2))]


def build_cnn(num_classes=10):
    return keras.Sequential([keras.Input(shape=(32, 32, 3)), build_augmentation(), layers.Rescaling(1.0 / 255),
                             *_block(32, 2), *_block(64, 2), *_block(128, 1),
                             layers.GlobalAveragePooling2D(), layers.Dense(num_classes, name="logits")],
                            name="my_sequential_cnn")


def build_cnn_v2(num_classes=10):
    return keras.Sequential([keras.Input(shape=(32, 32, 3)), build_augmentation(), layers.Rescaling(1.0 / 255),
                             *_block(32, 2), *_block(64, 2), *_block(128, 1), *_block(256, 1),
                             layers.GlobalAveragePooling2D(), layers.Dense(num_classes)], name="v2")
'''

HANG = "\ndef build_cnn_v2(num_classes=10):\n    while True:\n        pass\n"
MEMORY_BOMB = ("\ndef build_cnn(num_classes=10):\n    hoard = []\n    while True:\n"
               "        hoard.append(bytearray(64 * 2**20))\n")
CRASH_AT_IMPORT = "\nimport os\nos._exit(3)\n"


def module_source(name):
    """Return a solution module's source with its BEGIN/END SOLUTION markers left in (harmless comments)."""
    return (SOLUTIONS / f"{name}.py").read_text()


def single_file(edits=(), extra=""):
    """Return the four solution modules as one submission.py, with (old, new) text edits applied."""
    parts = [re.sub(r"^from augmentation import build_augmentation\n", "", module_source(name), flags=re.M)
             for name in MODULES]
    text = "\n\n".join(parts)
    for old, new in edits:
        if old not in text:
            raise ValueError(f"Edit {old!r} not found in the solutions")
        text = text.replace(old, new)
    return text + extra


def write_folder(path, edits=()):
    """Write the solution modules into a folder, with text edits applied to cnn.py."""
    path.mkdir(parents=True)
    for name in MODULES:
        text = module_source(name)
        if name == "cnn":
            for old, new in edits:
                text = text.replace(old, new)
        (path / f"{name}.py").write_text(text)


def write_notebook(path, source):
    """Write a notebook: one cell per top-level definition, plus a training cell the grader must skip."""
    cells = [nbformat.v4.new_markdown_cell("# Lesson 6 homework")]
    chunks = re.split(r"\n(?=def |import |from )", source)
    cells += [nbformat.v4.new_code_cell(chunk) for chunk in chunks if chunk.strip()]
    cells.append(nbformat.v4.new_code_cell(
        "(x, y), _ = keras.datasets.cifar10.load_data()\nmodel = build_cnn()\nmodel.fit(x, y, epochs=30)"))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))


def write_zip(path, folder):
    """Zip a folder's modules at the top of the archive."""
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, file.name)


# id -> (what it is, expected verdict). The ids sort in this order, so the batch grades them in it.
CLASS = {
    "alice": ("folder of modules, the reference", "full marks"),
    "bob.py": ("one .py file, Functional API", "full marks"),
    "carol.py": ("Sequential, tensorflow.keras, ReLU layers, kernel_size=(3, 3), own names", "full marks"),
    "dave.ipynb": ("notebook with a training cell", "full marks"),
    "erin.zip": ("zip of a folder", "full marks"),
    "frank.py": ("Activation('relu') layers after linear Conv2D", "full marks"),
    "grace": ("folder, forgot Rescaling(1/255)", "loses the rescaling and training points"),
    "heidi.py": ("softmax on the last Dense", "loses the logits points"),
    "ivan.py": ("shape math rounds down", "loses shape_math points only"),
    "judy.py": ("exits the interpreter at import", "zero, import error"),
    "mallory.py": ("build_cnn_v2 never returns", "loses build_cnn_v2 only"),
    "oscar.py": ("build_cnn allocates memory without end", "loses build_cnn and training"),
    "peggy.py": ("untouched stubs", "zero"),
    "trent.py": ("syntax error", "zero, import error"),
}
SMALL_CLASS = ("bob.py", "carol.py", "dave.ipynb", "erin.zip", "grace", "judy.py")


def make_class(out, names=None):
    """Write the class (or the named part of it) into out; return the paths of the submissions."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(CLASS) if names is None else list(names)
    relu_as_activation = ('layers.Conv2D({f}, 3, padding="same", activation="relu")(x)',
                          'layers.Activation("relu")(layers.Conv2D({f}, 3, padding="same")(x))')
    writers = {
        "alice": lambda path: write_folder(path),
        "bob.py": lambda path: path.write_text(single_file()),
        "carol.py": lambda path: path.write_text(
            single_file().replace("import keras\n", "from tensorflow import keras\n") + SEQUENTIAL_CNN),
        "dave.ipynb": lambda path: write_notebook(path, single_file()),
        "erin.zip": lambda path: _zip_of_reference(path),
        "frank.py": lambda path: path.write_text(single_file(
            [(relu_as_activation[0].format(f=f), relu_as_activation[1].format(f=f)) for f in (32, 64, 128, 256)])),
        "grace": lambda path: write_folder(path, [("    x = layers.Rescaling(1.0 / 255)(x)\n", "")]),
        "heidi.py": lambda path: path.write_text(single_file(
            [("outputs = layers.Dense(num_classes)(x)",
              'outputs = layers.Dense(num_classes, activation="softmax")(x)')])),
        "ivan.py": lambda path: path.write_text(single_file([("math.ceil(n / strides)", "math.floor(n / strides)")])),
        "judy.py": lambda path: path.write_text(single_file(extra=CRASH_AT_IMPORT)),
        "mallory.py": lambda path: path.write_text(single_file(extra=HANG)),
        "oscar.py": lambda path: path.write_text(single_file(extra=MEMORY_BOMB)),
        "peggy.py": lambda path: path.write_text(make_stub(single_file())),
        "trent.py": lambda path: path.write_text(single_file().replace("def build_cnn(", "def build_cnn(:", 1)),
    }
    paths = []
    for name in names:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        writers[name](path)
        paths.append(path)
    return paths


def _zip_of_reference(path):
    folder = path.with_suffix(".parts")
    write_folder(folder)
    write_zip(path, folder)
    shutil.rmtree(folder)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write the submissions into")
    parser.add_argument("--small", action="store_true", help="only the six submissions the tests use")
    args = parser.parse_args()
    for path in make_class(args.out, SMALL_CLASS if args.small else None):
        print(path)


if __name__ == "__main__":
    main()
