"""The student notebook: lesson text and one cell per exercise, a check cell that runs alone, graded back."""

import ast
import json
import subprocess
import sys

import nbformat
import pytest

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
from grader.options import NO_TRAINING
from grader.render.text import to_text
from grader.results import PASSED
from grader.submission import notebook_source
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
    assert packed["lesson_checks.py"] == (EXERCISES / "lesson_checks.py").read_text()
    assert packed["exercises_conftest.py"] == (EXERCISES / "conftest.py").read_text()


def test_the_notebook_checks_itself_without_the_repository(notebook_path, filled_path, tmp_path):
    # The stubs first, then the filled notebook in the same process: a re-run must see fresh functions.
    done = subprocess.run([sys.executable, "-c", RUN_ALL, str(notebook_path), str(filled_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"notebook"')]
    assert [run["exit_code"] for run in runs] == [1, 0], done.stdout[-3000:]
    assert "Not implemented yet: conv_output_size() is not implemented yet." in done.stdout
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
