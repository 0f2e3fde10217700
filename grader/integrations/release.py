"""Write the student repository: stubs and visible tests, README, requirements, grading workflow, notebook.

The stubs are made afresh from solutions/ (grader.lesson.stubs), never copied from exercises/, so a release cannot
carry a half-edited stub. Nothing from solutions/ or grader/ is copied; after writing, the release is scanned
for the reference's code and the hidden tests' names, and refused if either shows up.
"""

import ast
import re
import shutil
import sys
from pathlib import Path

from grader.integrations import github, kit_root, notebook, render, template
from grader.lesson.stubs import BEGIN, END, STUB_MODULES, write_student_files

VISIBLE_SUPPORT = ("conftest.py",)  # lesson_checks.py is generated afresh, like the stubs
STUDENT_REQUIREMENTS = ("tensorflow>=2.16", "keras>=3.3", "numpy", "pytest>=8", "pytest-timeout>=2.2")
PYTEST_INI = "[pytest]\ntestpaths = exercises\naddopts = -p no:cacheprovider\ntimeout = 300\n"
GITIGNORE = "__pycache__/\n*.pyc\n.ipynb_checkpoints/\n.venv/\nvenv/\n.pytest_cache/\ngrader-junit.xml\n"
KEPT_IN_TARGET = (".git",)          # a release may be written into a clone of the student template repository
SHORTEST_LEAK = 12                  # shorter solution lines (`else:`, `)`) say nothing about the answer

KIT_SOURCE_HELP = "the kit's source tree, with solutions/ and exercises/ (default: the one this grader runs from)"
GRADER_REPO_HELP = "OWNER/NAME of the private grader repository the workflow installs from (default: %(default)s)"
GRADER_REF_HELP = "branch or tag of the grader repository the workflow installs (default: %(default)s)"
MIN_SCORE_HELP = ("score the pull-request check must reach: points (45) or a percentage (80%%); the repository "
                  "variable MIN_SCORE overrides it (default: %(default)s)")
PYTHON_HELP = "Python version the workflow grades with (default: %(default)s)"
CI_GRADE_ARGS_HELP = "flags the workflow passes to `grader ci`, e.g. --ci-grade-args=--no-training (default: none)"

NOT_EMPTY = ("Expected an empty folder (or a git clone with nothing else in it) for the release, so nothing stale "
             "ships to students. Received: {path} containing {listing}")
LEAKED = "The release would show students {what}: {items}. Nothing was released; fix the kit and try again."


def build_release(out, *, kit_source=None, grader_repo=github.DEFAULT_GRADER_REPO,
                  grader_ref=github.DEFAULT_GRADER_REF, min_score=github.DEFAULT_MIN_SCORE,
                  python_version=github.DEFAULT_PYTHON, grade_args=""):
    """Write the student repository into out (empty, or a bare git clone); return its path."""
    kit = kit_root(kit_source, needs=("solutions", "exercises", "grader"))
    out = Path(out)
    check_target(out)
    workflow = github.render_workflow(grader_repo=grader_repo, grader_ref=grader_ref, min_score=min_score,
                                      python_version=python_version, grade_args=grade_args)
    exercises = out / "exercises"
    exercises.mkdir(parents=True, exist_ok=True)
    for path in visible_files(kit / "exercises"):
        shutil.copyfile(path, exercises / path.name)
    write_student_files(kit / "solutions", exercises)
    (out / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    (out / github.WORKFLOW_PATH).write_text(workflow, encoding="utf-8")
    (out / "README.md").write_text(render(template("README_students.md"), {
        "NOTEBOOK": notebook.NOTEBOOK_NAME, "MIN_SCORE_SHOWN": min_score_shown(min_score)}), encoding="utf-8")
    (out / "requirements.txt").write_text("\n".join(STUDENT_REQUIREMENTS) + "\n", encoding="utf-8")
    (out / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    (out / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    notebook.write_notebook(notebook.build_notebook(exercises, exercises), out / notebook.NOTEBOOK_NAME)
    leaks = find_leaks(out, kit)
    if leaks:
        for entry in out.iterdir():   # check_target made sure all but .git is ours
            if entry.name not in KEPT_IN_TARGET:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        raise ValueError(" ".join(leaks))
    return out


def visible_files(exercises_dir):
    """Return the kit's visible tests and the files they need, as shipped to students."""
    exercises = Path(exercises_dir)
    return sorted(exercises.glob("test_*.py")) + [exercises / name for name in VISIBLE_SUPPORT]


def min_score_shown(min_score):
    """Return the minimum score in the README's words."""
    text = str(min_score).strip()
    return f"{text} of the points" if text.endswith("%") else f"{text} points"


def check_target(out):
    """Refuse a release folder that holds anything but a .git folder."""
    if out.exists():
        extra = sorted(entry.name for entry in out.iterdir() if entry.name not in KEPT_IN_TARGET)
        if extra:
            raise FileExistsError(NOT_EMPTY.format(path=out, listing=", ".join(extra[:8])))


# --- what must never ship -----------------------------------------------------------------------


def solution_lines(solutions_dir):
    """Return the distinctive lines of code between the solution markers of every module."""
    lines = set()
    for name in STUB_MODULES:
        inside = False
        for line in (Path(solutions_dir) / name).read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped in (BEGIN, END):
                inside = stripped == BEGIN
            elif inside and len(stripped) >= SHORTEST_LEAK and not stripped.startswith("#"):
                lines.add(stripped)
    return lines


def defined_test_names(folder):
    """Return the names of the test functions defined in a folder's test_*.py files."""
    names = set()
    for path in Path(folder).glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}
    return names


def release_texts(out):
    """Yield (relative path, text) for every file of a release, the notebook's packed files included."""
    for path in sorted(Path(out).rglob("*")):
        if path.is_dir() or ".git" in path.relative_to(out).parts:
            continue
        relative = path.relative_to(out).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        yield relative, text
        if path.suffix == ".ipynb":
            import nbformat

            loaded = nbformat.reads(text, as_version=4)
            for cell in loaded.cells:
                yield f"{relative} (cell {cell.get('id')})", cell.source
            for name, packed in notebook.packed_files(loaded).items():
                yield f"{relative} (packed {name})", packed


def find_leaks(out, kit):
    """Return a sentence per kind of secret the release shows: reference code, hidden test names, folders."""
    # Lines the visible tests and helpers show anyway (a loop over model.layers) give nothing away; what this
    # guards against is the generated files (stubs, notebook, README) carrying the reference's code.
    shown = {line.strip() for path in visible_files(kit / "exercises")
             for line in path.read_text(encoding="utf-8").splitlines()}
    secret_lines = solution_lines(kit / "solutions") - shown
    hidden_names = defined_test_names(kit / "grader" / "checker" / "hidden_tests") - defined_test_names(kit / "exercises")
    leaked_lines, leaked_names = set(), set()
    for relative, text in release_texts(out):
        stripped = {line.strip() for line in text.splitlines()}
        leaked_lines |= {f"{line!r} in {relative}" for line in secret_lines & stripped}
        words = set(re.findall(r"\w+", text))
        leaked_names |= {f"{name} in {relative}" for name in hidden_names & words}
    leaks = []
    if leaked_lines:
        leaks.append(LEAKED.format(what="the reference solutions", items="; ".join(sorted(leaked_lines)[:5])))
    if leaked_names:
        leaks.append(LEAKED.format(what="the hidden tests", items="; ".join(sorted(leaked_names)[:5])))
    folders = [name for name in ("solutions", "grader", "hidden_tests") if any(Path(out).rglob(name))]
    if folders:
        leaks.append(LEAKED.format(what="instructor folders", items=", ".join(folders)))
    return leaks


def release_main(*, out, kit_source=None, grader_repo=github.DEFAULT_GRADER_REPO,
                 grader_ref=github.DEFAULT_GRADER_REF, min_score=github.DEFAULT_MIN_SCORE,
                 python_version=github.DEFAULT_PYTHON, grade_args=""):
    """Write the student release and list what it holds; return the exit code."""
    try:
        path = build_release(out, kit_source=kit_source, grader_repo=grader_repo, grader_ref=grader_ref,
                             min_score=min_score, python_version=python_version, grade_args=grade_args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"grader release: {error}", file=sys.stderr)
        return 2
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    print(f"Wrote the student release to {path} ({len(files)} files):", file=sys.stderr)
    for name in files:
        print(f"  {name}", file=sys.stderr)
    print("Next: push it as the assignment's template repository and set the GRADER_TOKEN secret "
          f"(see {github.WORKFLOW_PATH}).", file=sys.stderr)
    return 0
