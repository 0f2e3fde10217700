"""Write the student repository: stubs and visible tests, README, requirements, workflow, notebook.

The stubs are made afresh from solutions/ (grader.lesson.stubs), never copied from exercises/, so a release cannot
carry a half-edited stub. Nothing from solutions/ or grader/ is copied; after writing, the release is scanned
for the reference's code and the hidden tests' names, and refused if either shows up. Its workflow runs only the
visible tests; `--instructor-workflow` also writes the workflow that grades the class, for the instructor's
private grader repository.
"""

import ast
import re
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

from grader.integrations import (
    INSTALLED_SOURCES,
    PACKAGE,
    chosen_lesson,
    github,
    kit_root,
    notebook,
    render,
    source_tree,
    template,
)
from grader.lesson.stubs import BEGIN, END, PYTEST_SETTINGS, STUB_MODULES, student_checks, write_student_files
from grader.wording import plural

VISIBLE_SUPPORT = ("conftest.py",)  # lesson_checks.py and its lesson_checks.json are generated afresh, like the stubs
STUDENT_REQUIREMENTS = ("tensorflow>=2.16", "keras>=3.3", "numpy", "pytest>=8", "pytest-timeout>=2.2")
PYTEST_INI = "[pytest]\ntestpaths = exercises\n" + PYTEST_SETTINGS  # the kit's exercises/pytest.ini, run from the root
GITIGNORE = "__pycache__/\n*.pyc\n.ipynb_checkpoints/\n.venv/\nvenv/\n.pytest_cache/\ngrader-junit.xml\n"
KEPT_IN_TARGET = (".git",)          # a release may be written into a clone of the student template repository
SHORTEST_LEAK = 12                  # shorter solution lines (`else:`, `)`) say nothing about the answer

KIT_SOURCE_HELP = ("the kit's source tree, with solutions/ and exercises/ (default: the one this grader runs from, or "
                   "the copy an installed wheel carries)")
PYTHON_HELP = "Python version both workflows run (default: %(default)s)"
INSTRUCTOR_WORKFLOW_HELP = ("also write the workflow that grades the whole class with `grader batch` to this path, "
                            "e.g. .github/workflows/grade_class.yml in the private grader repository (default: none)")
CLASS_ORG_HELP = ("the instructor workflow's organization, whose repositories it grades; the repository variable "
                  "CLASS_ORG overrides it (default: %(default)s)")
REPO_PREFIX_HELP = ("the instructor workflow grades the organization's repositories whose names start with this; "
                    "the repository variable REPO_PREFIX overrides it (default: %(default)s)")
BATCH_ARGS_HELP = "flags the instructor workflow passes to `grader batch`, e.g. --batch-args=--jobs=2 (default: none)"
SHARDS_HELP = ("runners the instructor workflow grades the class on at once, each `grader batch --shard K/N`, "
               "then one job merges them (default: %(default)s)")
SCHEDULE_HELP = "when the instructor workflow grades the class, as a cron line in UTC (default: %(default)s)"

INSIDE_RELEASE = ("The instructor workflow must not go into the student release, which students can read: "
                  "expected a path outside {out}. Received: {path}")
NOT_EMPTY = ("Expected an empty folder (or a git clone with nothing else in it) for the release, so nothing stale "
             "ships to students. Received: {path} containing {listing}")
LEAKED = "The release would show students {what}: {items}. Nothing was released; fix the kit and try again."


def add_arguments(parser):
    """Add the release command's arguments to its parser."""
    parser.add_argument("out", help="an empty folder (or a fresh git clone) to write the release into")
    parser.add_argument("--kit-source", help=KIT_SOURCE_HELP)
    parser.add_argument("--python", dest="python_version", default=github.DEFAULT_PYTHON, help=PYTHON_HELP)
    parser.add_argument("--instructor-workflow", help=INSTRUCTOR_WORKFLOW_HELP)
    parser.add_argument("--class-org", default=github.DEFAULT_CLASS_ORG, help=CLASS_ORG_HELP)
    parser.add_argument("--repo-prefix", default=github.DEFAULT_REPO_PREFIX, help=REPO_PREFIX_HELP)
    parser.add_argument("--batch-args", default="", help=BATCH_ARGS_HELP)
    parser.add_argument("--schedule", dest="cron", default=github.DEFAULT_CRON, help=SCHEDULE_HELP)
    parser.add_argument("--shards", type=int, default=github.DEFAULT_SHARDS, help=SHARDS_HELP)


def main_arguments(args) -> dict:
    """Return release_main's keywords from the parsed command line."""
    return {"out": args.out, "kit_source": args.kit_source, "python_version": args.python_version,
            "instructor_workflow": args.instructor_workflow, "class_org": args.class_org,
            "repo_prefix": args.repo_prefix, "batch_args": args.batch_args, "cron": args.cron, "shards": args.shards}


def build_release(out, *, kit_source=None, python_version=github.DEFAULT_PYTHON):
    """Write the student repository into out (empty, or a bare git clone); return its path."""
    kit = release_sources(kit_source)
    out = Path(out)
    check_target(out)
    workflow = github.render_student_workflow(python_version=python_version)
    exercises = out / "exercises"
    exercises.mkdir(parents=True, exist_ok=True)
    for path in visible_files(kit.exercises):
        shutil.copyfile(path, exercises / path.name)
    write_student_files(kit.solutions, exercises, checks=kit.package / "checker" / "checks", kit=False)
    (out / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    (out / github.WORKFLOW_PATH).write_text(workflow, encoding="utf-8")
    (out / "README.md").write_text(render(template("README_students.md"), {"NOTEBOOK": notebook.NOTEBOOK_NAME}),
                                   encoding="utf-8")
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


class ReleaseSources(NamedTuple):
    """Where a release comes from: the reference, the visible tests and the grader package (checks, hidden tests)."""

    solutions: Path
    exercises: Path
    package: Path


def release_sources(kit_source=None):
    """Return the release's sources: kit_source, else the source tree, else what the installed wheel carries."""
    lesson = chosen_lesson()  # --lesson FOLDER: that lesson's reference and visible tests, the kit's checks
    if kit_source or source_tree():
        root = kit_root(kit_source or source_tree(), needs=("solutions", "exercises", "grader"))
        folder = lesson or root
        return ReleaseSources(folder / "solutions", folder / "exercises", root / "grader")
    root = lesson or kit_root(INSTALLED_SOURCES, needs=("solutions", "exercises"))
    return ReleaseSources(root / "solutions", root / "exercises", PACKAGE)


def visible_files(exercises_dir):
    """Return the kit's visible tests and the files they need, as shipped to students."""
    exercises = Path(exercises_dir)
    return sorted(exercises.glob("test_*.py")) + [exercises / name for name in VISIBLE_SUPPORT]


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
    texts = [student_checks(kit.package / "checker" / "checks")]
    texts += [path.read_text(encoding="utf-8") for path in visible_files(kit.exercises)]
    shown = {line.strip() for text in texts for line in text.splitlines()}
    secret_lines = solution_lines(kit.solutions) - shown
    hidden_names = (defined_test_names(kit.package / "checker" / "hidden_tests")
                    - defined_test_names(kit.exercises))
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


def release_main(*, out, kit_source=None, python_version=github.DEFAULT_PYTHON, instructor_workflow=None,
                 class_org=github.DEFAULT_CLASS_ORG, repo_prefix=github.DEFAULT_REPO_PREFIX, batch_args="",
                 cron=github.DEFAULT_CRON, shards=github.DEFAULT_SHARDS):
    """Write the student release, and the instructor's workflow when asked; list what was written; return the code."""
    try:
        class_workflow = None
        if instructor_workflow:
            if Path(instructor_workflow).resolve().is_relative_to(Path(out).resolve()):
                raise ValueError(INSIDE_RELEASE.format(out=out, path=instructor_workflow))
            class_workflow = github.render_instructor_workflow(class_org=class_org, repo_prefix=repo_prefix,
                                                               python_version=python_version, batch_args=batch_args,
                                                               cron=cron, shards=shards)
        path = build_release(out, kit_source=kit_source, python_version=python_version)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"grader release: {error}", file=sys.stderr)
        return 2
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    print(f"Wrote the student release to {path} ({plural(len(files), 'file')}):", file=sys.stderr)
    for name in files:
        print(f"  {name}", file=sys.stderr)
    print(f"Next: push it as the assignment's template repository. Its {github.WORKFLOW_PATH} runs the visible "
          "tests only and needs no secret.", file=sys.stderr)
    if class_workflow:
        Path(instructor_workflow).parent.mkdir(parents=True, exist_ok=True)
        Path(instructor_workflow).write_text(class_workflow, encoding="utf-8")
        print(f"Wrote the instructor workflow to {instructor_workflow}: commit it to the private grader repository "
              "and set its CLASSROOM_TOKEN secret (see the comments at its top).", file=sys.stderr)
    return 0
