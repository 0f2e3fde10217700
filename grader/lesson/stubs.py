"""Make the students' files: the stubs from the reference solutions, and their copy of the lesson's checks.

A solution marks the student's work with `# BEGIN SOLUTION` / `# END SOLUTION`. Inside a function the
block becomes a `raise NotImplementedError` that repeats the `# TODO:` line just above it; a block at
module level (a private helper) disappears. Everything else, signatures and docstrings included, is
copied, so `diff solutions/x.py exercises/x.py` shows only the student's work.

The checks (grader/checker/checks/) are the grader's; exercises/lesson_checks.py is a generated copy of its modules in
one file, so the visible tests explain a mistake in the same words as the hidden ones.
"""

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
CHECKS_HEADER = ("# Generated from the grader's grader/checker/checks/ (grader.lesson.stubs.write_student_files): "
                 "do not edit.\n")
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
        mistakes = [(answer, hint) for answer, hint in usual_mistakes(function, args, kwargs) if answer != expected]
        found[call_repr(function, args, kwargs)] = (expected, mistakes)
    return found


# What the students' copy records of the lesson's expectations: never the reference's model configs.
RECORDED_KEYS = ("dataset_name", "input_shape", "rescale", "augmentation", "augmentation_code", "augmentation_others",
                 "networks")
RECORDED_HEADER = ("\n\n# Recorded when this copy was made (grader.lesson.stubs), as data: the lesson's expectations, "
                   "from its reference,\n# and Keras's answers to the visible tests' own shape-math calls, with the "
                   "usual mistakes' answers and hints.\n")


def recorded_data(lesson_dir=None, tests=VISIBLE_SHAPE_MATH) -> str:
    """Return the code that records the lesson's expectations and the visible shape-math cases, as literals."""
    import pprint

    from grader.checker.reference import expectations

    found = expectations(lesson_dir)
    lesson = {key: found[key] for key in RECORDED_KEYS}
    return (RECORDED_HEADER + f"RECORDED = {pprint.pformat(lesson, width=120, sort_dicts=False)}\n"
            + f"RECORDED_CASES = {pprint.pformat(recorded_cases(tests), width=120, sort_dicts=False)}\n")


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


def student_checks(checks=CHECKS, lesson_dir=None) -> str:
    """Return the students' copy of the lesson's checks (exercises/lesson_checks.py): the checks without what answers
    shape math (keras_truth), the lesson's recorded expectations, and the visible tests' own shape-math cases."""
    exercises = Path(lesson_dir) / "exercises" if lesson_dir else VISIBLE_SHAPE_MATH.parent
    return CHECKS_HEADER + joined_checks(checks) + recorded_data(lesson_dir, exercises / VISIBLE_SHAPE_MATH.name)


def write_student_files(solutions_dir, exercises_dir, checks=CHECKS):
    """Write the stubs and the students' copy of the checks into exercises_dir; return the paths written."""
    written = write_stubs(solutions_dir, exercises_dir)
    target = Path(exercises_dir) / STUDENT_CHECKS
    target.write_text(student_checks(checks, Path(solutions_dir).parent), encoding="utf-8")
    return written + [target]
