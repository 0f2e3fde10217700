"""The student release: what it holds, what it must never hold, and that its tests fail on stubs, pass when solved."""

import ast
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

from grader import cli
from grader.integrations import release
from grader.integrations.release import STUDENT_REQUIREMENTS, build_release
from grader.lesson import stubs
from grader.lesson.stubs import BEGIN, END, STUB_MODULES, make_stub
from tests.conftest import EXERCISES, ROOT, SOLUTIONS

HIDDEN = ROOT / "grader" / "checker" / "hidden_tests"


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory):
    return build_release(tmp_path_factory.mktemp("release") / "lesson6")


def files_of(folder):
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def texts_of(folder):
    """Return {where: text} for every file, every notebook cell and every file packed in the notebook."""
    texts = {}
    for name in files_of(folder):
        text = (folder / name).read_text(errors="replace")
        texts[name] = text
        if name.endswith(".ipynb"):
            for number, cell in enumerate(json.loads(text)["cells"]):
                texts[f"{name} cell {number}"] = "".join(cell["source"])
                for blob in re.findall(r'LESSON6_CHECKS = "([A-Za-z0-9+/=]+)"', texts[f"{name} cell {number}"]):
                    with zipfile.ZipFile(io.BytesIO(base64.b64decode(blob))) as packed:
                        for member in packed.namelist():
                            texts[f"{name} packed {member}"] = packed.read(member).decode()
    return texts


def solution_bodies():
    """Return the code lines between the solution markers, but those the visible tests and helpers show anyway."""
    visible = {line.strip() for name in ["conftest.py", "lesson_checks.py", *(p.name for p in EXERCISES.glob("test_*"))]
               for line in (EXERCISES / name).read_text().splitlines()}
    bodies = set()
    for name in STUB_MODULES:
        inside = False
        for line in (SOLUTIONS / name).read_text().splitlines():
            if line.strip() in (BEGIN, END):
                inside = line.strip() == BEGIN
            elif inside and re.search(r"\w{3}", line) and not line.strip().startswith("#"):
                bodies.add(line.strip())
    return bodies - visible


def function_names(folder):
    return {node.name for path in folder.glob("test_*.py") for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


def test_holds_the_student_files_and_nothing_of_the_instructor(release_dir):
    files = files_of(release_dir)
    assert {"README.md", "requirements.txt", ".github/workflows/grade.yml", "lesson06_cnns.ipynb",
            "exercises/conftest.py", "exercises/lesson_checks.py", "exercises/lesson_checks.json",
            "pytest.ini"} <= set(files)
    assert {f"exercises/{name}" for name in STUB_MODULES} <= set(files)
    assert {f"exercises/{path.name}" for path in EXERCISES.glob("test_*.py")} <= set(files)
    assert not [name for name in files if name.startswith(("solutions/", "grader/", "tests/"))
                or "hidden_tests" in name or name.endswith((".pyc", ".toml"))]
    assert not (release_dir / "exercises" / "lesson_checks.py").is_symlink()


def test_has_no_solution_bodies(release_dir):
    bodies = solution_bodies()
    assert "return math.ceil(n / strides)" in bodies and len(bodies) > 20   # the scan looks for something real
    leaks = {(where, line) for where, text in texts_of(release_dir).items()
             for line in bodies & {line.strip() for line in text.splitlines()}}
    assert not leaks


def test_has_no_hidden_tests(release_dir):
    hidden = function_names(HIDDEN) - function_names(EXERCISES)
    assert {"test_learns_the_synthetic_shapes", "test_new_block"} <= hidden
    leaks = {(where, name) for where, text in texts_of(release_dir).items() for name in hidden
             if re.search(rf"\b{name}\b", text)}
    assert not leaks


def test_readme_says_how_to_run_the_tests_and_what_a_failure_looks_like(release_dir):
    readme = (release_dir / "README.md").read_text()
    assert "pytest exercises" in readme and "pip install -r requirements.txt" in readme
    assert "\nconv_output_size() is not implemented yet. Return" in readme and "Not implemented yet:" not in readme
    assert "Called build_cnn()." in readme and "lesson06_cnns.ipynb" in readme
    # The README tells the truth about the workflow next to it: visible tests only, feedback, not the grade.
    assert "This check is feedback" in readme and "Your grade comes from your instructor's grader" in readme
    workflow = (release_dir / ".github" / "workflows" / "grade.yml").read_text()
    for step in re.findall(r"test-name: (\w+)", workflow):
        assert f"`{step}`" in readme


def test_requirements_are_the_kits_student_dependencies(release_dir):
    lines = (release_dir / "requirements.txt").read_text().split()
    assert lines == list(STUDENT_REQUIREMENTS)
    assert {re.split(r"[<>=]", line)[0] for line in lines} == {"tensorflow", "keras", "numpy", "pytest",
                                                               "pytest-timeout"}
    if tomllib:
        kit = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        assert set(lines) <= set(kit)


@pytest.mark.parametrize("module", STUB_MODULES)
def test_release_stubs_are_made_from_the_solutions(release_dir, module):
    released = (release_dir / "exercises" / module).read_text()
    assert released == make_stub((SOLUTIONS / module).read_text())
    assert released == (EXERCISES / module).read_text(), (
        f"exercises/{module} drifted from solutions/{module}: regenerate it with grader.lesson.stubs.write_stubs")


def signatures_and_docstrings(source):
    tree = ast.parse(source)
    return ast.get_docstring(tree), {
        node.name: (ast.unparse(node.args), ast.get_docstring(node))
        for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}


@pytest.mark.parametrize("module", STUB_MODULES)
def test_stubs_keep_the_solutions_signatures_and_docstrings(release_dir, module):
    stub = signatures_and_docstrings((release_dir / "exercises" / module).read_text())
    solution = signatures_and_docstrings((SOLUTIONS / module).read_text())
    assert stub == solution and all(doc for _, doc in solution[1].values())


def visible_tests(folder):
    """Run `pytest exercises` in a release, as a student would: nothing of the kit on the path."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "pytest", "exercises", "-q"], cwd=folder, capture_output=True,
                          text=True, timeout=300, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_visible_tests_fail_on_the_stubs(release_dir):
    done = visible_tests(release_dir)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "is not implemented yet." in done.stdout and " passed" not in done.stdout


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_visible_tests_pass_once_the_solutions_are_in(release_dir, tmp_path):
    solved = shutil.copytree(release_dir, tmp_path / "solved")
    for path in SOLUTIONS.glob("*.py"):
        shutil.copyfile(path, solved / "exercises" / path.name)
    done = visible_tests(solved)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " failed" not in done.stdout and " error" not in done.stdout


def test_refuses_a_folder_with_something_in_it(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("stale")
    with pytest.raises(FileExistsError, match="Expected an empty folder"):
        build_release(tmp_path / "old")


def test_writes_into_a_fresh_git_clone(tmp_path):
    (tmp_path / "clone" / ".git").mkdir(parents=True)
    (tmp_path / "clone" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    build_release(tmp_path / "clone")
    assert (tmp_path / "clone" / "exercises" / "cnn.py").exists()
    assert (tmp_path / "clone" / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"


def test_refuses_to_ship_the_reference_or_a_hidden_test_name(tmp_path, monkeypatch):
    kit = tmp_path / "kit"
    for name in ("solutions", "exercises", "grader/checker/hidden_tests", "grader/checker/checks", "grader/lesson"):
        shutil.copytree(ROOT / name, kit / name, ignore=shutil.ignore_patterns("__pycache__"))
    with open(kit / "grader" / "checker" / "checks" / "output.py", "a") as helpers:
        helpers.write("# Mirrors the hidden test_new_block.\n")
    # A broken stub generator: the "stubs" are the solutions themselves.
    monkeypatch.setattr(stubs, "write_stubs", lambda solutions, exercises: [
        shutil.copyfile(solutions / name, exercises / name) for name in STUB_MODULES])
    (tmp_path / "out" / ".git").mkdir(parents=True)
    with pytest.raises(ValueError) as error:
        build_release(tmp_path / "out", kit_source=kit)
    message = str(error.value)
    assert re.search(r"would show students the reference solutions: .+? in exercises/\w+\.py", message)
    assert "would show students the hidden tests: test_new_block in exercises/lesson_checks.py" in message
    assert [path.name for path in (tmp_path / "out").iterdir()] == [".git"]   # nothing half-written stays


def test_cli_forwards_its_flags(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(release, "release_main", lambda **kwargs: seen.update(kwargs) or 0)
    with pytest.raises(SystemExit) as done:
        cli.run(["release", str(tmp_path / "out"), "--python", "3.12", "--instructor-workflow", "ci/class.yml",
                 "--class-org", "cs231", "--repo-prefix", "cnn-", "--batch-args=--jobs 2", "--schedule", "0 9 * * 5",
                 "--shards", "8"])
    assert done.value.code == 0
    assert seen == {"out": str(tmp_path / "out"), "kit_source": None, "python_version": "3.12",
                    "instructor_workflow": "ci/class.yml", "class_org": "cs231", "repo_prefix": "cnn-",
                    "batch_args": "--jobs 2", "cron": "0 9 * * 5", "shards": 8}


def test_the_instructor_workflow_is_written_where_asked(tmp_path, capsys):
    code = release.release_main(out=tmp_path / "student", instructor_workflow=tmp_path / "grader" / "class.yml",
                                class_org="cs231", repo_prefix="cnn-")
    assert code == 0
    text = (tmp_path / "grader" / "class.yml").read_text()
    assert "vars.CLASS_ORG || 'cs231'" in text and "grader batch submissions" in text
    assert f"Wrote the instructor workflow to {tmp_path / 'grader' / 'class.yml'}" in capsys.readouterr().err


def test_a_bad_instructor_setting_writes_nothing(tmp_path, capsys):
    code = release.release_main(out=tmp_path / "student", instructor_workflow=tmp_path / "class.yml",
                                class_org="cs231; rm -rf /")
    assert code == 2
    assert "Invalid organization 'cs231; rm -rf /': expected something like my-course-org" in capsys.readouterr().err
    assert not (tmp_path / "student").exists() and not (tmp_path / "class.yml").exists()
