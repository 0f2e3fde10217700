"""Install the kit the way courses do and grade with it: a wheel in a fresh venv (Python 3.11 and 3.10), and the
Gradescope zip's own setup.sh and run_autograder on a fake /autograder tree with the venv setup.sh made.

These tests build venvs and install TensorFlow into them (minutes, and the package index or pip's cache), so they
carry the `deployment` marker; `.ci/run` runs them. Nothing here uses the developer's editable install.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SOLUTIONS

pytestmark = [pytest.mark.deployment, pytest.mark.slow]

PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
INSTALL_SECONDS = 1500
GRADE_SECONDS = 600
BONUS = 5                                                            # the filters bonus, on top of the lesson's points
MUTANT_LINE = ("layers.GlobalAveragePooling2D()", "layers.Flatten()")  # the classic head mistake


def interpreter(version):
    """Return a python of this minor version (pyenv's or on PATH), or skip saying none is installed."""
    found = sorted(PYENV_ROOT.glob(f"versions/{version}.*/bin/python{version}"))
    path = str(found[-1]) if found else shutil.which(f"python{version}")
    if not path or subprocess.run([path, "--version"], capture_output=True).returncode != 0:
        pytest.skip(f"no Python {version} on this machine (looked in {PYENV_ROOT}/versions and on PATH)")
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the kit's wheel from the source tree, as `pip wheel .` would."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("lesson6_grader-*.whl")
    return built


def fresh_venv(python, path, wheel):
    """Create a venv and install the wheel into it (not editable); return its bin folder."""
    subprocess.run([python, "-m", "venv", str(path)], check=True, timeout=300)
    done = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", str(wheel)], capture_output=True, text=True,
                          timeout=INSTALL_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]
    return path / "bin"


def grade(bin_dir, submission, cwd):
    """Run the installed `grader grade --no-training` from outside the source tree; return the JSON report."""
    done = subprocess.run([str(bin_dir / "grader"), "grade", str(submission), "--no-training", "--format", "json"],
                          capture_output=True, text=True, cwd=cwd, timeout=GRADE_SECONDS,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def mutant(folder):
    """Write the reference with a Flatten head instead of GlobalAveragePooling2D; return its folder."""
    shutil.copytree(SOLUTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    cnn = folder / "cnn.py"
    text = cnn.read_text()
    assert MUTANT_LINE[0] in text
    cnn.write_text(text.replace(MUTANT_LINE[0], MUTANT_LINE[1]))
    return folder


def assert_full_marks(report):
    """Every test passed: the lesson's points in full, and the bonus on top of them."""
    failed = [f"{test['name']}: {test['output']}" for test in report["tests"] if test["status"] != "passed"]
    assert not failed and report["tests"] and report["score"] == report["max_score"] + BONUS, failed


def assert_mutant_loses_in_build_cnn(report):
    lost = {tag for test in report["tests"] if test["status"] != "passed" for tag in test["tags"]}
    assert report["score"] < report["max_score"] and lost <= {"build_cnn", "build_cnn_v2"} and lost, lost


@pytest.mark.parametrize("version", ["3.11", "3.10"])
def test_a_wheel_in_a_fresh_venv_grades_the_reference_and_a_mutant(version, wheel, tmp_path):
    bin_dir = fresh_venv(interpreter(version), tmp_path / "venv", wheel)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert_full_marks(grade(bin_dir, SOLUTIONS, outside))
    assert_mutant_loses_in_build_cnn(grade(bin_dir, mutant(tmp_path / "mutant"), outside))


def run_script(script, root, env, timeout):
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "AUTOGRADER_ROOT": str(root), "TF_CPP_MIN_LOG_LEVEL": "3", **env})


def gradescope_python():
    """Return the python3 setup.sh should find: the system's, as on Gradescope, where the probe's user can run it."""
    system = Path("/usr/bin/python3")
    if os.geteuid() == 0 and system.exists() and subprocess.run([str(system), "-m", "ensurepip", "--version"],
                                                                 capture_output=True).returncode == 0:
        return str(system.resolve())
    return interpreter("3.11")


def assert_probe_user(results):
    """As root (Gradescope's case) the probe ran as lesson6-probe; otherwise the report says why not."""
    user = next(layer for layer in results["extra_data"]["sandbox"] if layer["name"] == "user")
    if os.geteuid() == 0:
        assert user["held"] and user["reason"].startswith("runs as lesson6-probe (uid "), user
    else:
        assert not user["held"] and "does not run as root" in user["reason"], user


def test_gradescope_setup_and_run_autograder_on_a_fake_tree(wheel, tmp_path):
    from grader.integrations.gradescope import build_autograder_zip

    # Gradescope's /autograder and the venv are open to other users; pytest's tmp_path (mode 700) is not.
    area = Path(tempfile.mkdtemp(prefix="lesson6-gradescope-"))
    area.chmod(0o755)
    root = area / "autograder"
    zipped = build_autograder_zip(tmp_path / "autograder.zip", kit_source=wheel, grade_args="--no-training")
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(root / "source")
    venv = area / "gradescope-venv"
    env = {"GRADER_VENV": str(venv), "PATH": f"{Path(gradescope_python()).parent}:{os.environ['PATH']}"}
    try:
        grade_on_the_fake_tree(root, env, tmp_path)
    finally:
        shutil.rmtree(area, ignore_errors=True)


def grade_on_the_fake_tree(root, env, tmp_path):
    """Run setup.sh, then run_autograder on the reference and on a mutant; check both reports."""
    setup = run_script(root / "source" / "setup.sh", root, env, INSTALL_SECONDS)
    assert setup.returncode == 0, (setup.stdout + setup.stderr)[-4000:]
    assert f"the known-correct submission got {90 + BONUS} / 90" in setup.stdout
    assert not (root / "source" / "smoke").exists()           # graded at build time, then removed
    for name, folder in (("reference", SOLUTIONS), ("mutant", mutant(tmp_path / "mutant"))):
        shutil.rmtree(root / "submission", ignore_errors=True)
        shutil.copytree(folder, root / "submission")
        done = run_script(root / "source" / "run_autograder", root, env, GRADE_SECONDS)
        assert done.returncode == 0, done.stdout[-3000:]
        results = json.loads((root / "results" / "results.json").read_text())
        (assert_full_marks if name == "reference" else assert_mutant_loses_in_build_cnn)(results)
        assert_probe_user(results)
