"""Make the students' files: the stubs from the reference solutions, and their copy of the lesson's checks.

A solution marks the student's work with `# BEGIN SOLUTION` / `# END SOLUTION`. Inside a function the
block becomes a `raise NotImplementedError` that repeats the `# TODO:` line just above it; a block at
module level (a private helper) disappears. Everything else, signatures and docstrings included, is
copied, so `diff solutions/x.py exercises/x.py` shows only the student's work.

The checks (grader/checker/checks/) are the grader's; exercises/lesson_checks.py is a generated copy of its modules in
one file, so the visible tests explain a mistake in the same words as the hidden ones. The copy is the same for every
lesson: it holds code only (not keras_truth, nor what only the grader uses), and reads the lesson's data from
exercises/lesson_checks.json beside it, written with it: the expectations derived from the reference, and Keras's
answers to the visible tests' own shape-math calls.
"""

import json
import re
from pathlib import Path

from grader.lesson.manifest import MODULE_FILES

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
STUB_MODULES = MODULE_FILES
CHECKS = Path(__file__).resolve().parents[1] / "checker" / "checks"
# The checks' modules in the order the students' copy defines them: each after the ones it uses.
CHECKS_MODULES = ("expectations", "models", "shape_math", "preconditions", "comparison", "network", "augmentation",
                  "mistakes", "filters", "output")
STUDENT_CHECKS = "lesson_checks.py"
STUDENT_DATA = "lesson_checks.json"
CHECKS_HEADER = ("# Generated from the grader's grader/checker/checks/ (grader.lesson.stubs.write_student_files): "
                 "do not edit.\n# The lesson's data it compares with is in lesson_checks.json beside it.\n")
# The visible tests' pytest settings: exercises/pytest.ini in the kit, the release's own pytest.ini (which also points
# pytest at exercises/). `pytest exercises` in the kit then runs in one process, so that a mistake is told once.
PYTEST_SETTINGS = "addopts = -p no:cacheprovider\ntimeout = 300\n"
KIT_PYTEST_INI = ("# Generated (grader.lesson.stubs.PYTEST_SETTINGS, the student release's settings): do not edit.\n"
                  "[pytest]\n" + PYTEST_SETTINGS)
NOT_IMPLEMENTED = "{function}() is not implemented yet. {todo}"

_DEF = re.compile(r"^\s*def (\w+)\(")
_TODO = re.compile(r"^\s*# TODO: (.*)$")


def make_stub(source):
    """Return the stub version of a solution module's source."""
    lines = source.splitlines(keepends=True)
    out, function, todo, skipping = [], None, "", False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if skipping:
            if stripped == END:
                skipping = False
            continue
        if _DEF.match(line):
            function = _DEF.match(line).group(1)
        if _TODO.match(line):
            todo = _TODO.match(line).group(1)
        if stripped == BEGIN:
            skipping = True
            indent = line[: len(line) - len(line.lstrip())]
            if indent:
                message = NOT_IMPLEMENTED.format(function=function, todo=todo)
                out.append(f"{indent}raise NotImplementedError({message!r})\n")
            elif out and out[-1].strip() == "":
                out.pop()  # a removed module-level helper leaves no double blank line behind
            continue
        if stripped == END:
            raise ValueError(f"Found {END!r} without {BEGIN!r} at line {number}")
        out.append(line)
    if skipping:
        raise ValueError(f"Found {BEGIN!r} without {END!r}")
    return "".join(out)


def write_stubs(solutions_dir, exercises_dir):
    """Write the stub of every solution module into exercises_dir; return the paths written."""
    written = []
    for name in STUB_MODULES:
        target = Path(exercises_dir) / name
        target.write_text(make_stub((Path(solutions_dir) / name).read_text()))
        written.append(target)
    return written


CHECKS_PACKAGE = "grader.checker.checks"
GRADER_ONLY = re.compile(r"^# BEGIN GRADER ONLY.*?^# END GRADER ONLY\n", re.S | re.M)
VISIBLE_SHAPE_MATH = Path(__file__).resolve().parents[2] / "exercises" / "test_shape_math.py"


def visible_cases(tests=VISIBLE_SHAPE_MATH):
    """Return the visible shape-math tests' own cases: [(function, args, kwargs)], read from their CASES list."""
    import ast

    if not Path(tests).is_file():  # a lesson without shape-math exercises
        return []
    tree = ast.parse(Path(tests).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [target.id for target in node.targets if isinstance(target,
                                                                                              ast.Name)] == ["CASES"]:
            return ast.literal_eval(node.value)
    return []


def recorded_cases(tests=VISIBLE_SHAPE_MATH) -> dict:
    """Return {call: (Keras's answer, [(wrong answer, hint)])} for each of the visible tests' shape-math cases only."""
    from grader.checker.checks.keras_truth import KERAS_TRUTH, usual_mistakes
    from grader.checker.checks.shape_math import call_repr

    found = {}
    for function, args, kwargs in visible_cases(tests):
        expected = KERAS_TRUTH[function](*args, **kwargs)
        mistakes = tuple((answer, hint) for answer, hint in usual_mistakes(function, args, kwargs)
                         if answer != expected)
        found[call_repr(function, args, kwargs)] = (expected, mistakes)
    return found


# What the students' copy records of the lesson's expectations: never the reference's model configs.
RECORDED_KEYS = ("dataset_name", "input_shape", "rescale", "augmentation", "augmentation_code", "augmentation_others",
                 "networks")
NOT_JSON = ("The lesson's data must read back from {file} as the checks hold it (tuples for shapes and settings). "
            "Received: {key}, which reads back differently")


def recorded_data(lesson_dir=None, tests=VISIBLE_SHAPE_MATH) -> str:
    """Return lesson_checks.json: the lesson's expectations and the visible shape-math cases' answers, as JSON."""
    from grader.checker.checks.expectations import as_tuples
    from grader.checker.reference import expectations

    found = expectations(lesson_dir)
    data = {"expectations": {key: found[key] for key in RECORDED_KEYS}, "shape_math_cases": recorded_cases(tests)}
    text = json.dumps(data, indent=1) + "\n"
    read_back = as_tuples(json.loads(text))
    for part, values in data.items():
        for key, value in values.items():
            if read_back[part][key] != value:
                raise ValueError(NOT_JSON.format(file=STUDENT_DATA, key=f"{part}[{key!r}]"))
    return text


def joined_checks(checks=CHECKS) -> str:
    """Return the checks' modules as one module: their imports of each other left out, the rest in order."""
    import ast

    package = ast.get_docstring(ast.parse((Path(checks) / "__init__.py").read_text(encoding="utf-8")))
    imports, bodies = [], []
    for name in CHECKS_MODULES:
        source = GRADER_ONLY.sub("", (Path(checks) / f"{name}.py").read_text(encoding="utf-8"))
        lines = source.splitlines(keepends=True)
        tree = ast.parse(source)
        dropped = set()
        for node in tree.body:
            docstring = node is tree.body[0] and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            if docstring or isinstance(node, (ast.Import, ast.ImportFrom)):
                dropped.update(range(node.lineno - 1, node.end_lineno))
                own = isinstance(node, ast.ImportFrom) and (node.module or "").startswith(CHECKS_PACKAGE)
                if not docstring and not own:
                    imports.append("".join(lines[node.lineno - 1:node.end_lineno]))
        body = "".join(line for number, line in enumerate(lines) if number not in dropped)
        bodies.append(re.sub(r"\n{4,}", "\n\n\n", body).strip("\n") + "\n")
    standard = sorted(line for line in dict.fromkeys(imports) if not line.startswith("import numpy"))
    numpy = sorted(line for line in dict.fromkeys(imports) if line.startswith("import numpy"))
    return (f'"""{package}\n"""\n\n' + "".join(standard) + "\n" + "".join(numpy) + "\n\n"
            + "\n\n".join(bodies))


def student_checks(checks=CHECKS) -> str:
    """Return the students' copy of the checks (exercises/lesson_checks.py), the same for every lesson: the checks
    without what answers shape math (keras_truth) and without what only the grader uses (GRADER ONLY blocks)."""
    return CHECKS_HEADER + joined_checks(checks)


def write_student_files(solutions_dir, exercises_dir, checks=CHECKS, *, kit=True):
    """Write the stubs, the students' copy of the checks and the lesson's data into exercises_dir; return the paths.

    kit: also write exercises/pytest.ini (the student release has its own at its root instead).
    """
    exercises = Path(exercises_dir)
    written = write_stubs(solutions_dir, exercises)
    lesson_dir = Path(solutions_dir).parent
    files = {STUDENT_CHECKS: student_checks(checks),
             STUDENT_DATA: recorded_data(lesson_dir, exercises / VISIBLE_SHAPE_MATH.name)}
    if kit:
        files["pytest.ini"] = KIT_PYTEST_INI
    for name, text in files.items():
        (exercises / name).write_text(text, encoding="utf-8")
        written.append(exercises / name)
    return written
