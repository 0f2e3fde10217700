"""Gradescope: the autograder zip's layout, and run_autograder leaving a results.json behind whatever happens."""

import base64
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader import cli, integrations
from grader.integrations import gradescope
from grader.integrations.gradescope import GRADER_FAILED, GRADER_TIMED_OUT, KIT_DIR, build_autograder_zip
from grader.results import PASSED
from grader.store import from_json
from tests.conftest import SOLUTIONS, build_wheel

GRADER = Path(sys.executable).with_name("grader")


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    return build_autograder_zip(tmp_path_factory.mktemp("gradescope") / "autograder.zip", grade_args="--no-training")


def autograder_tree(tmp_path, autograder, files):
    """Lay out a fake /autograder: the zip unpacked in source/, the files given in submission/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(root / "source")
    (root / "submission").mkdir()
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    return root


def run_autograder(root, **env):
    """Run run_autograder as Gradescope would; return (the process, the results.json it left)."""
    merged = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_BIN": str(GRADER), "TF_CPP_MIN_LOG_LEVEL": "3",
              **env}
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=merged, capture_output=True,
                          text=True, timeout=300)
    return done, json.loads((root / "results" / "results.json").read_text())


def fake_grader(tmp_path, body):
    """Write an executable stand-in for the grader command."""
    path = tmp_path / "fake-grader"
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(0o755)
    return path


def solution_files():
    return {path.name: path.read_text() for path in SOLUTIONS.glob("*.py")}


def test_zip_has_the_scripts_at_its_root_and_the_kit_beside_them(autograder):
    with zipfile.ZipFile(autograder) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        checks = archive.read(f"{KIT_DIR}/grader/checker/checks/network.py").decode()
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder"} <= names
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert {f"{KIT_DIR}/pyproject.toml", f"{KIT_DIR}/README.md", f"{KIT_DIR}/grader/cli.py",
            f"{KIT_DIR}/grader/checker/hidden_tests/test_builders.py", f"{KIT_DIR}/grader/lesson/default/points.toml",
            f"{KIT_DIR}/grader/lesson/default/hidden_cases.json",
            f"{KIT_DIR}/grader/lesson/default/expectations.json"} <= names
    assert "def check_stage_shapes" in checks  # the grader's own copy of the lesson's checks
    assert not [name for name in names if name.startswith(("tests/", "solutions/", "exercises/", f"{KIT_DIR}/tests/"))
                or "__pycache__" in name or name.endswith(".pyc")]
    assert 'pip install "$KIT"' in setup and 'KIT="$AUTOGRADER_ROOT/source/kit"' in setup


def test_scripts_are_valid_bash(autograder, tmp_path):
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(tmp_path)
    for name in ("setup.sh", "run_autograder"):
        done = subprocess.run(["bash", "-n", str(tmp_path / name)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_a_wheel_is_bundled_as_it_is(tmp_path):
    wheel = tmp_path / "lesson6_grader-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    path = build_autograder_zip(tmp_path / "autograder.zip", kit_source=wheel)
    with zipfile.ZipFile(path) as archive:
        assert archive.read(f"{KIT_DIR}/{wheel.name}") == b"not really a wheel"
        assert f'KIT="$AUTOGRADER_ROOT/source/{KIT_DIR}/{wheel.name}"' in archive.read("setup.sh").decode()
        assert not [name for name in archive.namelist() if name.startswith(f"{KIT_DIR}/grader/")]


@pytest.mark.parametrize("grade_args, why", [
    ("--format text", "run_autograder sets --format and --output"),
    ("--output=x.json", "run_autograder sets --format and --output"),
    ("--no-such-flag", "`grader grade` does not accept them"),
    ("--dataset 'cifar10'", "quotes and escapes are not supported"),
])
def test_bad_grade_args_fail_when_the_zip_is_built(tmp_path, grade_args, why):
    with pytest.raises(ValueError, match="Invalid --grade-args") as error:
        build_autograder_zip(tmp_path / "autograder.zip", grade_args=grade_args)
    assert why in str(error.value)


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_the_solutions_get_full_marks(autograder, tmp_path):
    root = autograder_tree(tmp_path, autograder, solution_files())
    done, results = run_autograder(root)
    assert done.returncode == 0, done.stderr
    bonus = sum(test["score"] for test in results["tests"] if "bonus" in test["tags"])
    assert results["score"] == results["max_score"] + bonus and bonus > 0, results["output"]
    assert results["tests"] and all(test["status"] == PASSED for test in results["tests"])
    assert {test["tags"][0] for test in results["tests"]} >= {"shape_math", "augmentation", "build_cnn"}
    assert not any("training" in test["tags"] for test in results["tests"])  # GRADER_ARGS baked in: --no-training
    assert from_json(json.dumps(results)).status == "graded"


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_a_broken_submission_gets_a_graded_zero(autograder, tmp_path):
    root = autograder_tree(tmp_path, autograder, {"shape_math.py": "def conv_output_size(n, k:\n"})
    done, results = run_autograder(root)
    assert done.returncode == 0
    assert results["score"] == 0 and results["max_score"] > 0 and results["tests"]
    assert all(test["status"] == "failed" and test["output"] for test in results["tests"])


def test_a_missing_grader_still_leaves_a_zero_with_a_message(autograder, tmp_path):
    root = autograder_tree(tmp_path, autograder, solution_files())
    done, results = run_autograder(root, GRADER_BIN=str(tmp_path / "no-such-grader"))
    assert done.returncode == 0
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"] == GRADER_FAILED.format(code=127)
    assert from_json(json.dumps(results)).status == "error"


def test_a_crashing_grader_still_leaves_a_zero_with_its_log(autograder, tmp_path):
    root = autograder_tree(tmp_path, autograder, solution_files())
    grader = fake_grader(tmp_path, "print('Traceback: the grader broke', file=sys.stderr)\nsys.exit(3)")
    done, results = run_autograder(root, GRADER_BIN=str(grader))
    assert results["output"] == GRADER_FAILED.format(code=3)
    assert "the grader broke" in results["extra_data"]["log_tail"]
    assert "the grader broke" in done.stdout  # run_autograder's output: seen by instructors only


def test_a_report_written_before_a_crash_is_kept(autograder, tmp_path):
    root = autograder_tree(tmp_path, autograder, solution_files())
    report = {"score": 4, "max_score": 90, "output": "partial", "tests": [
        {"name": "shape_math: conv_output_size", "score": 4, "max_score": 4, "status": PASSED.value,
         "tags": ["shape_math"]}]}
    grader = fake_grader(tmp_path, f"import json\nout = sys.argv[sys.argv.index('--output') + 1]\n"
                                   f"open(out, 'w').write(json.dumps({report!r}))\nsys.exit(1)")
    _done, results = run_autograder(root, GRADER_BIN=str(grader))
    assert results == report


def test_a_grader_out_of_time_is_stopped_and_reported(autograder, tmp_path):
    if not shutil.which("timeout"):
        pytest.skip("coreutils timeout is not installed")
    root = autograder_tree(tmp_path, autograder, solution_files())
    grader = fake_grader(tmp_path, "import time\ntime.sleep(60)")
    _done, results = run_autograder(root, GRADER_BIN=str(grader), GRADER_TIMEOUT="1")
    assert results["score"] == 0
    assert results["output"] == GRADER_TIMED_OUT.format(seconds=1)


def test_grader_args_reach_grader_grade(autograder, tmp_path):
    root = autograder_tree(tmp_path, autograder, solution_files())
    grader = fake_grader(tmp_path, "import json\nout = sys.argv[sys.argv.index('--output') + 1]\n"
                                   "open(out, 'w').write(json.dumps({'score': 0, 'tests': [], 'argv': sys.argv[1:]}))")
    _done, results = run_autograder(root, GRADER_BIN=str(grader), GRADER_ARGS="--dataset cifar10 --memory 2")
    assert results["argv"] == ["grade", str(root / "submission"), "--format", "json", "--output",
                               str(root / "results" / "grader-report.json"), "--import-after-probe", "--dataset",
                               "cifar10", "--memory", "2"]
    _done, results = run_autograder(root, GRADER_BIN=str(grader))
    assert results["argv"][-1] == "--no-training"   # the default baked into the zip


def test_cli_forwards_its_flags(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(gradescope, "gradescope_main", lambda **kwargs: seen.update(kwargs) or 0)
    with pytest.raises(SystemExit) as done:
        cli.run(["gradescope", str(tmp_path / "a.zip"), "--kit-source", "dist/kit.whl",
                 "--grade-args=--no-training", "--timeout", "600"])
    assert done.value.code == 0
    assert seen == {"out": str(tmp_path / "a.zip"), "kit_source": "dist/kit.whl", "grade_args": "--no-training",
                    "timeout": 600, "smoke_submission": None}


# --- from an installed kit: no flag needed, and each error names its flag ------------------------------------------


def test_without_the_source_tree_a_missing_reference_names_smoke_submission(tmp_path, monkeypatch):
    monkeypatch.setattr(integrations, "source_tree", lambda: None)
    monkeypatch.setattr(integrations, "INSTALLED_SOURCES", tmp_path / "kit_sources")
    with pytest.raises(FileNotFoundError) as error:
        build_autograder_zip(tmp_path / "autograder.zip")
    assert "--smoke-submission" in str(error.value) and str(tmp_path / "kit_sources") in str(error.value)


def test_a_kit_source_that_is_not_a_kit_names_kit_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected the kit's source tree for --kit-source, a folder with "):
        build_autograder_zip(tmp_path / "autograder.zip", kit_source=tmp_path)


def test_an_editable_install_cannot_stand_for_a_wheel_and_says_use_kit_source(monkeypatch, tmp_path):
    monkeypatch.setattr(gradescope, "source_tree", lambda: None)
    with pytest.raises(FileNotFoundError, match="--kit-source"):
        build_autograder_zip(tmp_path / "autograder.zip", smoke_submission=SOLUTIONS)


def test_an_installed_kit_bundles_a_wheel_rebuilt_from_its_files(tmp_path, monkeypatch):
    from importlib import metadata

    built = build_wheel(tmp_path / "dist", tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    (original,) = (tmp_path / "dist").glob("*.whl")
    site = tmp_path / "site-packages"                 # the wheel as pip lays it out, with pip's own extra files
    with zipfile.ZipFile(original) as archive:
        archive.extractall(site)
        shipped = {name for name in archive.namelist() if not name.endswith("/RECORD")}
    (info,) = site.glob("*.dist-info")
    (info / "INSTALLER").write_text("pip\n")
    monkeypatch.setattr(gradescope.metadata, "distribution", lambda name: metadata.PathDistribution(info))
    monkeypatch.setattr(gradescope, "source_tree", lambda: None)
    monkeypatch.setattr(integrations, "source_tree", lambda: None)
    monkeypatch.setattr(integrations, "INSTALLED_SOURCES", site / "grader" / "kit_sources")
    path = build_autograder_zip(tmp_path / "autograder.zip")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert f'KIT="$AUTOGRADER_ROOT/source/{KIT_DIR}/{original.name}"' in archive.read("setup.sh").decode()
        wheel = zipfile.ZipFile(io.BytesIO(archive.read(f"{KIT_DIR}/{original.name}")))
    assert {"smoke/cnn.py", "smoke/filters.py"} <= set(names)
    rebuilt = set(wheel.namelist())
    assert shipped | {f"{info.name}/RECORD"} == rebuilt                     # all of it, and not INSTALLER
    assert "grader/kit_sources/solutions/cnn.py" in rebuilt
    for line in wheel.read(f"{info.name}/RECORD").decode().splitlines():
        name, digest, size = line.split(",")
        if digest:                                                          # RECORD lists itself without a hash
            data = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), name
