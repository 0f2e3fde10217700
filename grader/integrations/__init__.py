"""Fit the kit into the course's world: Gradescope, pull-request CI, the student release and its notebook.

Each module owns one destination: `gradescope` builds the autograder zip, `github` renders the student and
instructor workflows and runs `grader ci`, `release` writes the student repository, and
`notebook` builds the student notebook. The shell and YAML files they fill in live in `templates/`.
"""

import re
from importlib import resources
from pathlib import Path

import grader

PLACEHOLDER = re.compile(r"@[A-Z_]+@")
TEMPLATES = resources.files(__name__) / "templates"
NOT_A_KIT = "Expected the kit's source tree{flag}, a folder with {needs}. Received: {path}"
PACKAGE = Path(grader.__file__).resolve().parent
# An installed wheel carries the kit's solutions/ and exercises/ here (setup.py copies them in at build time).
INSTALLED_SOURCES = PACKAGE / "kit_sources"


def template(name):
    """Return the text of one of the templates: the lesson folder's own copy where it has one, else the kit's."""
    from grader.lesson.manifest import DEFAULT_LESSON, lesson_dir

    own = lesson_dir() / name
    if lesson_dir().resolve() != DEFAULT_LESSON.resolve() and own.is_file():
        return own.read_text(encoding="utf-8")
    return (TEMPLATES / name).read_text(encoding="utf-8")


def chosen_lesson():
    """Return the folder of the lesson chosen with --lesson, or None for the kit's own (which the wheel carries)."""
    from grader.lesson.manifest import DEFAULT_LESSON, lesson_dir

    return None if lesson_dir().resolve() == DEFAULT_LESSON.resolve() else lesson_dir()


LESSON_NUMBER = re.compile(r"@PARAMS:(\w+):(total|-?\d+)@")


def with_lesson_numbers(text):
    """Return text with each @PARAMS:builder:total@ (or :N@, the N-th stage) replaced by the reference's count."""
    if not LESSON_NUMBER.search(text):
        return text
    from grader.checker.reference import expectations

    networks = expectations()["networks"]

    def count(match):
        network = networks[match.group(1)]
        found = network["total_params"] if match.group(2) == "total" else network["stages"][int(match.group(2))][2]
        return f"{found:,}"

    return LESSON_NUMBER.sub(count, text)


def render(text, values):
    """Return text with every @NAME@ placeholder replaced from values; fail on one left unfilled."""
    text = with_lesson_numbers(text)
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    leftover = sorted(set(PLACEHOLDER.findall(text)))
    if leftover:
        raise ValueError(f"Template placeholders left unfilled: {', '.join(leftover)}")
    return text


def kit_root(path=None, needs=("pyproject.toml", "grader"), flag="--kit-source"):
    """Return the kit's source tree: path, or the folder this grader package was installed from (editable)."""
    root = Path(path) if path else PACKAGE.parent
    if not all((root / name).exists() for name in needs):
        raise FileNotFoundError(NOT_A_KIT.format(needs=", ".join(needs), flag=f" for {flag}" if flag else "",
                                                 path=root))
    return root


def source_tree():
    """Return the source tree this grader runs from (a clone, an editable install), or None when installed."""
    root = PACKAGE.parent
    return root if all((root / name).exists() for name in ("pyproject.toml", "solutions", "exercises")) else None


def kit_folder(name, flag):
    """Return the kit's solutions/ or exercises/: from the source tree, or the copy the installed wheel carries."""
    return kit_root(source_tree() or INSTALLED_SOURCES, needs=(name,), flag=flag) / name
