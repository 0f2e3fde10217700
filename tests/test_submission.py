"""Tests for grader.submission.prepare: every kind of submission becomes a scratch folder of modules."""

import ast
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.submission import (
    API_MODULES,
    EXPECTED_KINDS,
    SINGLE_FILE,
    SubmissionError,
    prepare,
)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"

TRAINING_NOTEBOOK_CELLS = [
    "!pip install tensorflow\n%matplotlib inline",
    "import keras\nfrom keras import layers\nimport matplotlib.pyplot as plt\nimport numpy as np",
    "(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()\nprint(x_train.shape)",
    "NUM_CLASSES = 10\nUNUSED = 42\ndata_augmentation = keras.Sequential(\n"
    "    [layers.RandomFlip('horizontal'), layers.RandomRotation(0.05), layers.RandomZoom(0.1)],\n"
    "    name='augmentation')",
    "def build_augmentation():\n    return data_augmentation",
    "@keras.saving.register_keras_serializable()\nclass Scale(layers.Layer):\n    pass",
    "def build_cnn(num_classes=NUM_CLASSES):\n    model = keras.Sequential([keras.Input((32, 32, 3)), "
    "data_augmentation,\n        layers.GlobalAveragePooling2D(), layers.Dense(num_classes)])\n    return model",
    "model = build_cnn()\nmodel.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
    "history = model.fit(x_train, y_train, epochs=20, validation_data=(x_test, y_test))",
    "plt.plot(history.history['loss'])\nmodel.save('cnn.keras')",
    "%%time\nmodel.evaluate(x_test, y_test)",
]


def write_notebook(path, cells):
    """Write a notebook with one code cell per source string."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Lesson 6")] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(notebook, str(path))
    return path


def files_in(folder):
    """Return the relative paths of the files under folder."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def test_single_py_file_is_copied_as_submission_py(tmp_path):
    source = tmp_path / "my_work.py"
    source.write_text("def conv_params(k, c, f, use_bias=True):\n    return 0\n")
    prepared = prepare(source, tmp_path / "scratch")
    assert files_in(prepared) == [SINGLE_FILE]
    assert (prepared / SINGLE_FILE).read_text() == source.read_text()
    assert prepared.parent == tmp_path / "scratch"


def test_folder_of_modules_keeps_helpers_and_drops_test_configuration(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    for name in API_MODULES + ("helpers.py", "conftest.py", "pytest.ini"):
        (folder / name).write_text("# code\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "cnn.cpython-311.pyc").write_bytes(b"\0")
    (folder / "old.pyc").write_bytes(b"\0")
    prepared = prepare(folder, tmp_path / "scratch")
    assert files_in(prepared) == sorted(API_MODULES + ("helpers.py",))
    assert (folder / "conftest.py").exists()  # the original is untouched


def test_repository_uses_its_exercises_folder(tmp_path):
    repo = tmp_path / "repo"
    (repo / "exercises").mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text("")
    (repo / "exercises" / "cnn.py").write_text("# cnn\n")
    (repo / "exercises" / "test_cnn.py").write_text("# visible tests\n")
    (repo / "README.md").write_text("readme")
    prepared = prepare(repo, tmp_path / "scratch")
    assert files_in(prepared) == ["cnn.py", "test_cnn.py"]


def test_solutions_folder_is_copied(tmp_path):
    prepared = prepare(SOLUTIONS, tmp_path / "scratch")
    assert set(API_MODULES) <= set(files_in(prepared))


def test_notebook_keeps_definitions_and_what_they_need(tmp_path):
    notebook = write_notebook(tmp_path / "lesson6.ipynb", TRAINING_NOTEBOOK_CELLS)
    source = (prepare(notebook, tmp_path / "scratch") / SINGLE_FILE).read_text()
    ast.parse(source)
    for kept in ("import keras", "from keras import layers", "NUM_CLASSES = 10",
                 "data_augmentation = keras.Sequential(", "def build_augmentation", "def build_cnn", "class Scale",
                 "@keras.saving.register_keras_serializable()"):
        assert kept in source
    for dropped in ("load_data", "model.fit", "epochs=20", "pip install", "%matplotlib", "model = build_cnn()",
                    "model.compile", "plt.plot", "model.save", "evaluate", "UNUSED", "print(", "import matplotlib"):
        assert dropped not in source


def test_notebook_cell_with_syntax_error_is_kept_so_the_probe_reports_it(tmp_path):
    notebook = write_notebook(tmp_path / "broken.ipynb", ["def build_cnn(:\n    pass", "x = load()"])
    source = (prepare(notebook, tmp_path / "scratch") / SINGLE_FILE).read_text()
    assert "def build_cnn(:" in source
    assert "load()" not in source
    with pytest.raises(SyntaxError):
        ast.parse(source)


def test_malformed_notebook_is_rejected(tmp_path):
    notebook = tmp_path / "bad.ipynb"
    notebook.write_text("{ this is not json")
    with pytest.raises(SubmissionError, match="Expected a Jupyter notebook .* could not read"):
        prepare(notebook, tmp_path / "scratch")


@pytest.mark.parametrize("content", [b"", b"x = '\xe9t\xe9'\n", b"def build_cnn(:\n"],
                         ids=["empty", "latin-1", "syntax"])
def test_odd_source_files_are_copied_as_they_are(tmp_path, content):
    source = tmp_path / "work.py"
    source.write_bytes(content)
    assert (prepare(source, tmp_path / "scratch") / SINGLE_FILE).read_bytes() == content


def test_zip_of_a_folder_is_extracted(tmp_path):
    archive = tmp_path / "work.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("work/cnn.py", "# cnn\n")
        zipped.writestr("work/augmentation.py", "# aug\n")
        zipped.writestr("work/conftest.py", "# no\n")
        zipped.writestr("__MACOSX/work/._cnn.py", "junk")
    assert files_in(prepare(archive, tmp_path / "scratch")) == ["augmentation.py", "cnn.py"]


def test_zip_of_a_notebook_is_converted(tmp_path):
    notebook = write_notebook(tmp_path / "nb.ipynb", TRAINING_NOTEBOOK_CELLS)
    archive = tmp_path / "nb.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(notebook, "nb.ipynb")
    source = (prepare(archive, tmp_path / "scratch") / SINGLE_FILE).read_text()
    assert "def build_cnn" in source and "load_data" not in source


@pytest.mark.parametrize("entry, why", [("../evil.py", "path leaves the folder"), ("/etc/evil.py", "absolute path"),
                                        ("work/../../evil.py", "path leaves the folder")])
def test_zip_slip_is_rejected(tmp_path, entry, why):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("cnn.py", "# fine\n")
        zipped.writestr(entry, "# evil\n")
    with pytest.raises(SubmissionError, match=why) as raised:
        prepare(archive, tmp_path / "scratch")
    assert entry in str(raised.value)
    assert not (tmp_path / "evil.py").exists()


def test_zip_with_symlink_is_rejected(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        info = zipfile.ZipInfo("cnn.py")
        info.external_attr = (0o120777 << 16)
        zipped.writestr(info, "../../solutions/cnn.py")
    with pytest.raises(SubmissionError, match="symbolic link"):
        prepare(archive, tmp_path / "scratch")


def test_folder_with_symlink_is_rejected(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    os.symlink(SOLUTIONS / "cnn.py", folder / "cnn.py")
    with pytest.raises(SubmissionError, match="symbolic link 'cnn.py'"):
        prepare(folder, tmp_path / "scratch")


def test_zip_bomb_is_rejected(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("cnn.py", b"\0" * (60 * 2**20))
    with pytest.raises(SubmissionError, match="at most"):
        prepare(archive, tmp_path / "scratch")


def test_wrong_kind_says_what_was_expected_and_received(tmp_path):
    text = tmp_path / "x.txt"
    text.write_text("hello")
    with pytest.raises(SubmissionError) as raised:
        prepare(text, tmp_path / "scratch")
    assert str(raised.value) == EXPECTED_KINDS.format(path=str(text))
    assert str(raised.value).startswith("Expected a .py file, a folder, a .ipynb notebook or a .zip; received ")


def test_missing_path_and_empty_folder_are_rejected(tmp_path):
    with pytest.raises(SubmissionError, match="does not exist"):
        prepare(tmp_path / "nope.py", tmp_path / "scratch")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionError, match="containing nothing"):
        prepare(tmp_path / "empty", tmp_path / "scratch")


def test_not_a_zip_is_rejected(tmp_path):
    archive = tmp_path / "fake.zip"
    archive.write_text("not a zip")
    with pytest.raises(SubmissionError, match="Expected a readable .zip"):
        prepare(archive, tmp_path / "scratch")
