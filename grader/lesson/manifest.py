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
# The part each function is graded in (lesson.toml's `part`).
PART_OF = {function["name"]: function["part"] for module in _DATA["modules"] for function in module["functions"]
           if function.get("part")}
# The part whose hidden tests read only the model one builder returns, and that builder.
BUILDER_PARTS = {PART_OF[name]: name for name in BUILDERS if name in PART_OF}
# The builder whose network a builder's network extends (its part grades the new block): {part: base builder}.
EXTENDS = {PART_OF[function["name"]]: function["extends"] for module in _DATA["modules"]
           for function in module["functions"] if function.get("extends") and function["name"] in PART_OF}
TRAINING_BUILDER = _DATA.get("training", {}).get("builder")
TRAINING_PART = _DATA.get("training", {}).get("part", "training") if TRAINING_BUILDER else None
TRAINING_HINT = _DATA.get("training", {}).get("hint", "Networks that do not learn usually have frozen layers or an "
                                                      "output layer unlike the lesson's.")
FILTERS_BUILDER = _DATA.get("filters", {}).get("builder")

# The API functions a function calls (lesson.toml's `calls`: the networks call the augmentation block's builder).
# Where the student's own fails, the probe calls the function again with the lesson's version of the one it calls, so
# each mistake costs its own part.
CALLS = {function["name"]: tuple(function["calls"]) for module in _DATA["modules"]
         for function in module["functions"] if function.get("calls")}
# The parts that judge another part's result and so keep its substitution: the training check trains its builder (a
# network that learns needs the lesson's block where the student's cannot be built).
USES = {TRAINING_PART: TRAINING_BUILDER} if TRAINING_BUILDER else {}

# Where the points of every hidden test are kept: the lesson folder's points.toml.
POINTS_FILE = lesson_dir() / "points.toml"
# The lesson's hidden shape-math cases and the titles of their tests, if it has shape-math functions.
HIDDEN_CASES_FILE = lesson_dir() / "hidden_cases.json"


def module_list(functions=API):
    """Return 'shape_math.py, augmentation.py, cnn.py and filters.py' (the modules holding functions)."""
    names = [f"{module}.py" for module in MODULES if set(MODULES[module]) & set(functions)]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
