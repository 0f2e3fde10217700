"""Build the student notebook: the lesson's words, the four exercise modules as code cells, and a check cell.

The notebook must work from Jupyter (or Colab) without the repository, so its last cell carries the visible
tests and lesson_checks.py with it, packed, and runs them with pytest on the functions the cells above
defined. The grader reads the same notebook back (grader.submission keeps only its definitions and
imports), so a filled notebook grades like the filled exercises/ folder.
"""

import ast
import base64
import io
import zipfile
from pathlib import Path

import nbformat

from grader.lesson.manifest import LESSON_NAME
from grader.lesson.stubs import STUB_MODULES, STUDENT_CHECKS, STUDENT_DATA

NOTEBOOK_NAME = "lesson06_cnns.ipynb"
CELL_KEY = "lesson6"                 # cell metadata: {"lesson6": {"module": "cnn.py"}} or {"role": "checks"}
CHECKS_ROLE = "checks"
PACKED_NAME = "LESSON6_CHECKS"       # the check cell's variable holding the packed visible tests
NAMESPACE_MODULE = "lesson6_notebook"
VISIBLE_CONFTEST = "exercises_conftest.py"   # exercises/conftest.py, whose failure hook the notebook reuses
SIBLING_IMPORT = "# {names} comes from the {module} cell above."

INTRO = """\
# Lesson 6 — CNNs in Keras: exercises

Fill in the functions in the four code cells below: shape math, the augmentation block, the lesson's CNN
(and its deeper v2), and the bonus on first-layer filters. Each docstring has the formula, the shapes and the
lesson's numbers; each function raises `NotImplementedError` until you write it.

Run **every cell**, then the last one: it runs the visible tests (the same ones as `pytest exercises` in the
repository) on your functions and says what to fix, one sentence per problem.

Hand in this notebook as it is. The grader reads only your definitions (functions, imports and the constants
they use), so a training cell you add to experiment is never run by it; keep the function names and
signatures unchanged.
"""

SECTIONS = {
    "shape_math.py": """\
## 1. The shape math you must be able to do in your head

The single most useful formula in CNN work:

$$o = \\left\\lfloor \\frac{n + 2p - k}{s} \\right\\rfloor + 1$$

where $n$ is input size, $k$ kernel size, $s$ stride, $p$ padding per side. Keras hides $p$ behind two strings:

- `padding="valid"` (default): no padding, $o = \\lfloor (n-k)/s \\rfloor + 1$. The map shrinks.
- `padding="same"`: pad just enough that with stride 1, output size equals input size ($o = \\lceil n/s \\rceil$ in
  general).

And the two rules that go with it:

- Channels in don't affect output spatial size — but they do affect parameter count: a `Conv2D(F, k)` on $C$
  input channels has $k \\cdot k \\cdot C \\cdot F + F$ parameters (the $+F$ is biases).
- `MaxPooling2D(2)` halves height and width (stride defaults to pool size) and has zero parameters.

At the end of the conv stack the lesson's network has a (4, 4, 128) map. `Flatten` unrolls it into a
$4 \\cdot 4 \\cdot 128 = 2048$-vector and the following `Dense(10)` needs $2048 \\cdot 10 + 10 = 20{,}490$
parameters; `GlobalAveragePooling2D` averages each map to one number, (4, 4, 128) → (128,), and the head needs
$128 \\cdot 10 + 10 = 1{,}290$.
""",
    "augmentation.py": """\
## 2. Augmentation as layers inside the model

CIFAR-10 has only 50,000 training images, and our network has enough capacity to memorize them. The cheapest fix
is data augmentation: show the network randomly flipped and rotated variants so it can't latch onto exact pixel
arrangements. Keras offers augmentation as layers, inside the model itself:

- **Train/inference asymmetry is automatic.** These layers are active only when the model is called with
  `training=True` — which `model.fit()` does for you. At evaluation and inference time they become identity
  functions.
- **It runs where the model runs**, and because it's part of the saved model, whoever loads it gets the exact same
  preprocessing for free.

One caution: don't add augmentations that destroy the label. Horizontal flips are safe for CIFAR-10 (a flipped cat
is a cat); vertical flips are not (an upside-down truck is not a typical truck).
""",
    "cnn.py": """\
## 3. The network, and GlobalAveragePooling2D vs Flatten

Input 32×32×3 → augmentation (training only) → `Rescaling(1/255)` → conv block ×2 with 32 filters → pool →
conv block ×2 with 64 filters → pool → conv block with 128 filters → pool → `GlobalAveragePooling2D` (4×4×128 → 128)
→ `Dense(10)` logits.

- **Two convs before each pool.** Two stacked 3×3 convolutions see a 5×5 neighborhood with fewer parameters and an
  extra nonlinearity compared to one 5×5 conv.
- **`padding="same"` everywhere.** Let pooling — a deliberate, controlled operation — be the only thing that
  shrinks the map.
- **Logits out, no softmax.** The loss gets `from_logits=True`.
- **Rescaling inside the model**, right after augmentation: the model accepts raw pixel values and owns its own
  normalization.

GAP is the modern default: fewer parameters means less overfitting in the head, and the model becomes input-size
agnostic. `Flatten` still earns its keep when the map is tiny and position is the signal. For our CIFAR net,
swapping GAP for Flatten adds ~19K head parameters and typically buys nothing. We keep GAP. The whole network has
@PARAMS:build_cnn:total@ parameters.

**Your task (v2):** add a fourth conv block — `Conv2D(256, 3, padding="same", activation="relu")` followed by
`MaxPooling2D(2)` — before the GAP layer. Before running anything, compute by hand the output shape after the new
pool, the new block's parameter count, and how the `Dense` head's parameter count changes.
""",
    "filters.py": """\
## 4. Bonus: what did the network learn? First-layer filters

First-layer filters are the only ones you can interpret directly, because they operate on raw RGB: each is a
3×3×3 patch you can render as a tiny image. The kernel layout is (kernel_h, kernel_w, channels_in,
channels_out), so `kernels[:, :, :, i]` is filter $i$. Normalize each filter on its own — raw weights are small
values centered near zero — and grab the layer by type, not by index, because augmentation and rescaling layers
sit in front of it.

To watch a filter act on an image, carve out a sub-model from the input to the first conv layer and call it with
`training=False`: without it, the augmentation layers would randomly flip and rotate your probe image.
""",
}

CHECKS_INTRO = """\
## Check your work

The next cell runs the visible tests on the functions defined above (run those cells first). It carries the tests
and their helpers with it, so it works without the repository. A failure reads like
`conv_output_size() is not implemented yet. ...` or `Called build_cnn(). The output of the first MaxPooling2D is ...`.
"""

NOTEBOOK_CONFTEST = '''\
"""Hand the notebook's functions to the visible tests: the notebook's stand-in for exercises/conftest.py."""

import sys

import pytest

from exercises_conftest import pytest_runtest_makereport  # noqa: F401  one sentence per failure, as in the repo

NOT_DEFINED = "{name} is not defined in the notebook: run the cell that defines it, then run the checks again."


class NotebookFunctions:
    """The notebook's globals, read like a module: student("cnn").build_cnn."""

    def __init__(self, functions):
        self._functions = functions

    def __getattr__(self, name):
        if name.startswith("_"):  # private and special names are never the student's functions
            raise AttributeError(name)
        if name not in self._functions:
            pytest.fail(NOT_DEFINED.format(name=name), pytrace=False)
        return self._functions[name]


@pytest.fixture(scope="session")
def student():
    """Return a loader that gives the notebook's functions whatever module the test asks for."""
    functions = NotebookFunctions(sys.modules["{namespace}"].functions)
    return lambda name: functions
'''.replace("{namespace}", NAMESPACE_MODULE)

PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider\n"

CHECKS_CELL = """\
# Run the visible tests (the same as `pytest exercises` in the repository) on the functions defined above.
# {packed} packs those tests and lesson_checks.py with its data: the same files as exercises/ in the repository.
import base64, io, pathlib, sys, tempfile, types, zipfile

import pytest

{packed} = "{blob}"

_checks_dir = globals().get("_checks_dir") or pathlib.Path(tempfile.mkdtemp(prefix="lesson6-checks-"))
_checks = zipfile.ZipFile(io.BytesIO(base64.b64decode({packed})))
_checks.extractall(_checks_dir)
for _name in _checks.namelist():  # forget the last run's test modules, so a re-run sees fresh ones
    sys.modules.pop(pathlib.Path(_name).stem, None)
sys.modules.update({namespace}=types.SimpleNamespace(functions=dict(globals())))
lesson6_exit_code = pytest.main([str(_checks_dir), "-q", "--no-header", "--color=no", "-p", "no:cacheprovider"])
print("All visible checks pass." if lesson6_exit_code == 0 else "Some checks fail: read the messages above.")
"""


def exercise_cell_source(source):
    """Return a module's source as a notebook cell: docstring as comments, no imports of the other exercises."""
    tree = ast.parse(source)
    lines = source.splitlines()
    replaced = {}                                       # first line index -> (last line index, new lines)
    siblings = {Path(name).stem for name in STUB_MODULES}
    for node in tree.body:
        first, last = node.lineno - 1, node.end_lineno - 1
        if node is tree.body[0] and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            replaced[first] = (last, [f"# {line}".rstrip() for line in node.value.value.strip().splitlines()])
        elif isinstance(node, ast.ImportFrom) and node.module in siblings:
            names = ", ".join(alias.asname or alias.name for alias in node.names)
            replaced[first] = (last, [SIBLING_IMPORT.format(names=names, module=f"{node.module}.py")])
        elif isinstance(node, ast.Import) and any(alias.name in siblings for alias in node.names):
            raise ValueError(f"Expected `from module import name` for another exercise; received line {first + 1}: "
                             f"{lines[first]!r}")
    out, index = [], 0
    while index < len(lines):
        if index in replaced:
            last, new = replaced[index]
            out.extend(new)
            index = last + 1
        else:
            out.append(lines[index])
            index += 1
    return "\n".join(out).strip("\n") + "\n"


def pack_checks(exercises_dir):
    """Return the visible tests, lesson_checks.py with its data and the notebook's conftest as a base64 zip."""
    exercises = Path(exercises_dir)
    files = {path.name: path.read_text(encoding="utf-8") for path in sorted(exercises.glob("test_*.py"))}
    for name in (STUDENT_CHECKS, STUDENT_DATA):
        files[name] = (exercises / name).read_text(encoding="utf-8")
    files[VISIBLE_CONFTEST] = (exercises / "conftest.py").read_text(encoding="utf-8")
    files["conftest.py"] = NOTEBOOK_CONFTEST
    files["pytest.ini"] = PYTEST_INI
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))   # same bytes on every build
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def packed_files(notebook):
    """Return {name: text} of the files the notebook's check cell carries."""
    for cell in notebook.cells:
        if cell.get("metadata", {}).get(CELL_KEY, {}).get("role") == CHECKS_ROLE:
            blob = cell.source.split(f'{PACKED_NAME} = "', 1)[1].split('"', 1)[0]
            with zipfile.ZipFile(io.BytesIO(base64.b64decode(blob))) as archive:
                return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}
    raise ValueError("Expected a Lesson 6 notebook with a check cell; found none")


OTHER_SECTION = "## `{module}`\n\nFill in the functions below; each docstring says what to return.\n"
OTHER_INTRO = ("# {lesson}: exercises\n\nFill in the functions in the code cells below, then run the last cell: it "
               "runs the visible tests on your functions and says what to fix.\n")


def lesson_text(name, kit_text):
    """Return a notebook text, the lesson's numbers filled in from its reference: for another lesson than the kit's,
    its folder's own file of that name (e.g. notebook_intro.md) where it has one."""
    from grader.integrations import with_lesson_numbers
    from grader.lesson.manifest import DEFAULT_LESSON, lesson_dir

    if lesson_dir().resolve() != DEFAULT_LESSON.resolve():
        own = lesson_dir() / name
        if own.is_file():
            kit_text = own.read_text(encoding="utf-8")
        elif name == "notebook_intro.md":
            kit_text = OTHER_INTRO.format(lesson=LESSON_NAME)
    return with_lesson_numbers(kit_text)


def build_notebook(modules_dir, exercises_dir):
    """Return the student notebook: the modules in modules_dir as cells, the visible tests of exercises_dir packed."""
    cells = [nbformat.v4.new_markdown_cell(lesson_text("notebook_intro.md", INTRO))]
    for name in STUB_MODULES:
        section = SECTIONS.get(name) or OTHER_SECTION.format(module=name)
        cells.append(nbformat.v4.new_markdown_cell(lesson_text(f"notebook_{Path(name).stem}.md", section)))
        source = exercise_cell_source((Path(modules_dir) / name).read_text(encoding="utf-8"))
        cells.append(nbformat.v4.new_code_cell(source, metadata={CELL_KEY: {"module": name}}))
    cells.append(nbformat.v4.new_markdown_cell(CHECKS_INTRO))
    checks = CHECKS_CELL.format(packed=PACKED_NAME, blob=pack_checks(exercises_dir), namespace=NAMESPACE_MODULE)
    cells.append(nbformat.v4.new_code_cell(checks, metadata={CELL_KEY: {"role": CHECKS_ROLE}}))
    for number, cell in enumerate(cells):
        cell.id = f"lesson6-{number:02d}"            # stable ids: a re-release diffs cleanly
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(notebook)
    return notebook


def fill_notebook(notebook, modules_dir):
    """Return a copy of the notebook with each exercise cell replaced by that module from modules_dir."""
    filled = nbformat.reads(nbformat.writes(notebook), as_version=4)
    for cell in filled.cells:
        module = cell.get("metadata", {}).get(CELL_KEY, {}).get("module")
        if module:
            cell.source = exercise_cell_source((Path(modules_dir) / module).read_text(encoding="utf-8"))
    return filled


def write_notebook(notebook, path):
    """Write a notebook to path; return the path."""
    path = Path(path)
    nbformat.write(notebook, str(path))
    return path
