"""The lesson's API, read once from its manifest (lesson.toml): the modules a student writes, their functions, how
the probe calls each, and the parts they are graded in.

A lesson is a folder of data: lesson.toml, the reference solutions/, the stubs in exercises/, points and calibration.
Lesson 6 is the default lesson: its folder is the repository root (installed with the grader as
grader/lesson/default). GRADER_LESSON names another lesson's folder (`--lesson` sets it). Every other place derives
from here: the untrusted runner (which receives this map in its request), the stubs, the visible tests' loader, the
reports' part columns, the kit's tests and the benchmarks.
"""

import os
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same parser, from PyPI
    import tomli as tomllib

DEFAULT_LESSON = Path(__file__).resolve().parent / "default"
LESSON_ENV = "GRADER_LESSON"
MANIFEST = "lesson.toml"
CALL_KINDS = ("shape_math", "builder", "filters")
BAD_MANIFEST = "Invalid lesson manifest {path}: {problem}. Expected the layout of the kit's own lesson.toml."


def lesson_dir() -> Path:
    """Return the folder of the lesson being graded: $GRADER_LESSON, else the default lesson (lesson 6)."""
    chosen = os.environ.get(LESSON_ENV)
    return Path(chosen).resolve() if chosen else DEFAULT_LESSON


def read_manifest(folder=None) -> dict:
    """Return a lesson folder's lesson.toml, checked for what the grader needs from it."""
    path = Path(folder or lesson_dir()) / MANIFEST
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ValueError(BAD_MANIFEST.format(path=path, problem=f"it cannot be read ({error.strerror})")) from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(BAD_MANIFEST.format(path=path, problem=f"it is not valid TOML ({error})")) from None
    for module in data.get("modules", []):
        for function in module.get("functions", []):
            if function.get("call") not in CALL_KINDS:
                raise ValueError(BAD_MANIFEST.format(path=path, problem=f"{function.get('name')!r} has call="
                                                     f"{function.get('call')!r}, not one of {CALL_KINDS}"))
    if not data.get("modules") or not data.get("lesson", {}).get("parts"):
        raise ValueError(BAD_MANIFEST.format(path=path, problem="it has no [lesson] parts or no [[modules]]"))
    return data


_DATA = read_manifest()
LESSON_NAME = _DATA["lesson"].get("name", "")
DATASET_NAME = _DATA["lesson"].get("dataset_name", "")

# The parts of the lesson, in report order; each hidden test is tagged with one.
PARTS = tuple(_DATA["lesson"]["parts"])

# The student's modules and the functions each one defines, in the order the probe calls them.
MODULES = {module["name"]: tuple(function["name"] for function in module["functions"]) for module in _DATA["modules"]}
# The signatures every stub, solution and submission shares (checked against solutions/ by the kit's tests).
SIGNATURES = {function["name"]: function["signature"] for module in _DATA["modules"]
              for function in module["functions"]}
# How the probe calls each function: with the request's list of shape-math cases, to build a model, or on the
# checker's seeded model (the bonus).
CALL_KIND = {function["name"]: function["call"] for module in _DATA["modules"] for function in module["functions"]}
# A submission may also put everything into one file of this name (or a notebook, which becomes this file).
SINGLE_FILE_MODULE = _DATA["lesson"].get("single_file_module", "submission")

HOME_MODULE = {function: module for module, functions in MODULES.items() for function in functions}
API = tuple(HOME_MODULE)
SHAPE_MATH = tuple(name for name in API if CALL_KIND[name] == "shape_math")
BUILDERS = tuple(name for name in API if CALL_KIND[name] == "builder")
# The builders that take num_classes: the probe also calls them with the hidden number of classes.
CNN_BUILDERS = tuple(name for name in BUILDERS if "num_classes" in SIGNATURES[name])
FILTERS = tuple(name for name in API if CALL_KIND[name] == "filters")
MODULE_FILES = tuple(f"{module}.py" for module in MODULES)
# The part whose hidden tests read only the model one builder returns, and that builder.
BUILDER_PARTS = {function["part"]: function["name"] for module in _DATA["modules"] for function in module["functions"]
                 if function.get("part")}
TRAINING_BUILDER = _DATA.get("training", {}).get("builder")
FILTERS_BUILDER = _DATA.get("filters", {}).get("builder")

# The API functions a function calls (the networks call build_augmentation()). Where the student's own fails, the
# probe calls the function again with the lesson's version of the one it calls, so each mistake costs its own part.
CALLS = {"build_cnn": ("build_augmentation",), "build_cnn_v2": ("build_augmentation",)}
# The parts that judge another part's result and so keep its substitution: the training check trains build_cnn (a
# network that learns needs the lesson's block where the student's cannot be built).
USES = {"training": "build_cnn"}

# Where the points of every hidden test are kept: the lesson folder's points.toml, else the kit's hidden tests'.
_LESSON_POINTS = lesson_dir() / "points.toml"
POINTS_FILE = (_LESSON_POINTS if _LESSON_POINTS.is_file()
               else Path(__file__).resolve().parent.parent / "checker" / "hidden_tests" / "points.toml")


def module_list(functions=API):
    """Return 'shape_math.py, augmentation.py, cnn.py and filters.py' (the modules holding functions)."""
    names = [f"{module}.py" for module in MODULES if set(MODULES[module]) & set(functions)]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
