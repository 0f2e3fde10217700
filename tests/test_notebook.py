"""The student notebook: lesson text and one cell per exercise, a check cell that runs alone, graded back."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import magics
from grader.grade import grade
from grader.integrations.notebook import (
    CELL_KEY,
    NOTEBOOK_NAME,
    exercise_cell_source,
    fill_notebook,
    packed_files,
    write_notebook,
)
from grader.integrations.release import build_release
from grader.lesson.stubs import STUB_MODULES, make_stub
from grader.notebook_cells import notebook_source
from grader.options import NO_TRAINING
from grader.render.text import to_text
from grader.results import PASSED
from grader.submission import SubmissionError
from tests.conftest import EXERCISES, SOLUTIONS

# Runs a notebook's code cells in order in one namespace, as Jupyter's "Run All" would, from a folder that
# holds nothing of the kit; prints the check cell's exit code.
RUN_ALL = """
import json, sys, nbformat
for path in sys.argv[1:]:
    namespace = {"__name__": "__main__"}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, path, "exec"), namespace)
    print(json.dumps({"notebook": path, "exit_code": int(namespace["lesson6_exit_code"])}))
"""


@pytest.fixture(scope="module")
def notebook_path(tmp_path_factory):
    return build_release(tmp_path_factory.mktemp("release") / "lesson6") / NOTEBOOK_NAME


@pytest.fixture(scope="module")
def notebook(notebook_path):
    return nbformat.read(str(notebook_path), as_version=4)


@pytest.fixture(scope="module")
def filled_path(notebook, tmp_path_factory):
    return write_notebook(fill_notebook(notebook, SOLUTIONS), tmp_path_factory.mktemp("filled") / "alice.ipynb")


def exercise_cells(notebook):
    return {cell.metadata[CELL_KEY]["module"]: cell for cell in notebook.cells
            if cell.get("metadata", {}).get(CELL_KEY, {}).get("module")}


def test_is_a_valid_notebook_with_one_cell_per_exercise(notebook):
    nbformat.validate(notebook)
    assert list(exercise_cells(notebook)) == list(STUB_MODULES)
    assert notebook.cells[-1].metadata[CELL_KEY] == {"role": "checks"}
    assert all(cell.id for cell in notebook.cells)


def test_markdown_cells_carry_the_lessons_sections(notebook):
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    for phrase in ("\\left\\lfloor \\frac{n + 2p - k}{s} \\right\\rfloor + 1",   # shape math
                   "Augmentation as layers inside the model", "vertical flips are not",
                   "GlobalAveragePooling2D vs Flatten", "20{,}490", "1{,}290",
                   "First-layer filters", "training=False", "Check your work"):
        assert phrase in markdown, phrase


@pytest.mark.parametrize("module", STUB_MODULES)
def test_code_cells_are_the_stubs(notebook, module):
    source = exercise_cells(notebook)[module].source
    assert source == exercise_cell_source(make_stub((SOLUTIONS / module).read_text()))
    assert "raise NotImplementedError" in source
    stub_functions = {node.name for node in ast.parse((EXERCISES / module).read_text()).body
                      if isinstance(node, ast.FunctionDef)}
    assert stub_functions <= {node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def test_cells_import_what_they_use_but_never_each_other(notebook):
    cnn = exercise_cells(notebook)["cnn.py"].source
    assert "from augmentation import" not in cnn and "import keras" in cnn
    assert "# build_augmentation comes from the augmentation.py cell above." in cnn
    assert "import math" in exercise_cells(notebook)["shape_math.py"].source


def test_carries_the_visible_tests_with_it(notebook):
    packed = packed_files(notebook)
    for path in EXERCISES.glob("test_*.py"):
        assert packed[path.name] == path.read_text()
    for name in ("lesson_checks.py", "lesson_checks.json"):
        assert packed[name] == (EXERCISES / name).read_text()
    assert packed["exercises_conftest.py"] == (EXERCISES / "conftest.py").read_text()


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_the_notebook_checks_itself_without_the_repository(notebook_path, filled_path, tmp_path):
    # The stubs first, then the filled notebook in the same process: a re-run must see fresh functions.
    done = subprocess.run([sys.executable, "-c", RUN_ALL, str(notebook_path), str(filled_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"notebook"')]
    assert [run["exit_code"] for run in runs] == [1, 0], done.stdout[-3000:]
    assert "conv_output_size() is not implemented yet. Return" in done.stdout
    assert "Not implemented yet:" not in done.stdout
    assert "All visible checks pass." in done.stdout


def test_the_grader_reads_only_the_definitions(filled_path):
    module = notebook_source(filled_path, str(filled_path))
    assert "def build_cnn_v2(" in module and "def _all_layers(" in module
    assert "pytest.main" not in module and "LESSON6_CHECKS" not in module


def test_the_filled_notebook_gets_full_marks(filled_path):
    results = grade(filled_path, NO_TRAINING)
    assert results.tests and all(test.status == PASSED for test in results.tests), to_text(results)
    assert results.score == results.max_score + results.bonus_score
    assert {test.part for test in results.tests} >= {"shape_math", "augmentation", "build_cnn", "build_cnn_v2"}


def test_the_unfilled_notebook_scores_zero(notebook_path):
    results = grade(notebook_path, NO_TRAINING)
    assert results.tests and results.score == 0 and results.max_score > 0


def test_filling_changes_only_the_exercise_cells(notebook, filled_path):
    filled = nbformat.read(str(filled_path), as_version=4)
    assert [cell.source for cell in filled.cells if not cell.metadata.get(CELL_KEY, {}).get("module")] == \
        [cell.source for cell in notebook.cells if not cell.metadata.get(CELL_KEY, {}).get("module")]


# --- notebooks as IPython reads them: magics and shell escapes ------------------------------------------

# The reference split into cells as course notebooks write them: setup magics, timed and captured cells.
MAGIC_CELLS = {
    "setup": "!pip install tensorflow\n%matplotlib inline\n%load_ext autoreload\n%autoreload 2",
    "shape_math.py": "%%time\n{code}",
    "augmentation.py": "%%capture\n{code}",
    "cnn.py": "%matplotlib inline\n{code}\nfiles = !ls",
    "filters.py": "%%capture captured\n%%time\n{code}",
    "shell": "%%bash\necho 'a bash cell'\n",
}
SKIPPED_IN_MAGIC_CELLS = ["!pip install tensorflow (cell 1)", "%matplotlib inline (cell 1)",
                          "%load_ext autoreload (cell 1)", "%autoreload 2 (cell 1)", "%matplotlib inline (cell 4)"]


def magic_notebook(path, last=""):
    cells = [template.format(code=exercise_cell_source((SOLUTIONS / name).read_text()) if name in STUB_MODULES else "")
             for name, template in MAGIC_CELLS.items()]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells + [last] if cell])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return write_notebook(notebook, path)


@pytest.fixture
def kit_reader(monkeypatch):
    """Read notebooks with the kit's own reader, as where IPython is not installed."""
    monkeypatch.setattr(magics, "ipython_transformer", lambda: None)


def test_a_notebook_with_course_magics_gets_full_marks_and_lists_what_was_skipped(tmp_path, kit_reader):
    results = grade(magic_notebook(tmp_path / "magics.ipynb"), NO_TRAINING)
    assert results.tests and all(test.status == PASSED for test in results.tests), to_text(results)
    skipped = [note for note in results.notes if note.startswith("The grader skipped")]
    assert skipped == ["The grader skipped 7 IPython commands it does not run (magics and shell escapes): "
                       + "; ".join(SKIPPED_IN_MAGIC_CELLS) + "; and 2 more."]
    assert skipped[0] in to_text(results)


def test_the_kit_reader_lists_every_skipped_command_in_order(tmp_path, kit_reader):
    notes = []
    module = notebook_source(magic_notebook(tmp_path / "magics.ipynb"), "magics.ipynb", notes)
    assert "def conv_output_size(" in module and "def first_layer_filters(" in module and "get_ipython" not in module
    assert notes == ["The grader skipped 7 IPython commands it does not run (magics and shell escapes): "
                     + "; ".join(SKIPPED_IN_MAGIC_CELLS) + "; and 2 more."]
    notes.clear()
    notebook_source(write_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "%%timeit\ndef f():\n    return 1")]), tmp_path / "t.ipynb"), "t.ipynb", notes)
    assert notes == [magics.TIMEIT_NOTE.format(cell=1)]


@pytest.mark.parametrize("cell, kept, skipped", [
    ("x = (1\n% 2)\ny = 'a' \\\n% 3\ndef f():\n    return x, y", "x = (1\n% 2)", []),
    ('DOC = """\n%not a magic\n!nor a shell escape\n"""\ndef f():\n    return DOC', "%not a magic", []),
    ("import os\n!ls -la\nout = !echo hi\nmodel?\ndef f():\n    return os", "import os",
     ["!ls -la", "!echo hi", "model?"]),
    ("\n\n%%time  \nimport os\ndef f():\n    return os", "import os", []),
    ("%%writefile helper.py\ndef f():\n    return 1", None, ["%%writefile helper.py cell"]),
    ("%%html\n<b>hi</b>", None, ["%%html cell"]),
], ids=["modulo-continuations", "string", "line-escapes", "blank-lines-first", "writefile", "html"])
def test_the_kit_reader_reads_python_and_skips_the_rest(tmp_path, kit_reader, cell, kept, skipped):
    notes = []
    path = write_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), tmp_path / "c.ipynb")
    module = notebook_source(path, "c.ipynb", notes)
    if kept is None:  # a cell that is not Python: nothing of it is graded
        assert module == ""
    else:
        assert kept in module and "def f():" in module and "get_ipython" not in module
    assert len(notes) == bool(skipped) and all(f"{text} (cell 1)" in "".join(notes) for text in skipped)


def test_ipython_and_the_kit_reader_give_the_same_module(tmp_path, monkeypatch):
    pytest.importorskip("IPython.core.inputtransformer2", reason="IPython is not installed (not a kit dependency)")
    path = magic_notebook(tmp_path / "magics.ipynb")
    with_ipython, without = [], []
    module = notebook_source(path, "magics.ipynb", with_ipython)
    monkeypatch.setattr(magics, "ipython_transformer", lambda: None)
    assert notebook_source(path, "magics.ipynb", without) == module and without == with_ipython


def test_a_cell_magic_past_the_limit_is_refused(tmp_path, kit_reader):
    path = write_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%capture\n" * 20 + "x = 1")]),
                          tmp_path / "c.ipynb")
    with pytest.raises(SubmissionError, match="cell 1 of 'c.ipynb' wraps more than 8 cell magics"):
        notebook_source(path, "c.ipynb")


def test_jupyter_runs_the_magic_notebook_and_keeps_its_functions(tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (a local check of the magics)")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (a local check of the magics)")
    path = magic_notebook(tmp_path / "magics.ipynb", last="print(build_cnn().count_params(), conv_output_size)")
    notebook = nbformat.read(str(path), as_version=4)
    # pip finds tensorflow installed and never reaches an index; the kernel runs from a folder without the kit.
    env_patch = {"PIP_NO_INDEX": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
                 "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env_patch.items():
            patch.setenv(name, value)
        nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    assert printed.startswith("140714 <function conv_output_size"), notebook.cells[-1].outputs
