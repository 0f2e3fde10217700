"""Install the kit the way courses do and use it as a newcomer would: a wheel in a fresh venv (Python 3.10 and
3.13), every command of the README's path run from a folder outside any clone, and the Gradescope zip that the
installed kit builds with no flag, through its own setup.sh and run_autograder on a fake /autograder tree.

These tests build venvs and install TensorFlow into them (minutes, and the package index or pip's cache), so they
carry the `deployment` marker; `.ci/run` runs them. One venv per Python version serves every test of the module.
Nothing here uses the developer's editable install.
"""

import csv
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest

from grader.checker.points import load_points
from grader.lesson.manifest import PARTS
from tests.conftest import EXERCISES, SOLUTIONS, build_wheel

pytestmark = [pytest.mark.deployment, pytest.mark.slow]

PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
VERSIONS = ("3.10", "3.13")                      # the oldest and the newest Python the kit supports
INSTALL_SECONDS = 1500
GRADE_SECONDS = 600
WALK_SECONDS = INSTALL_SECONDS + 1500            # pytest-timeout: one install and the whole walk-through
BROWSER_SECONDS = 120
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
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
    """Build the kit's wheel as `pip wheel .` does in a fresh clone (tests/conftest.py's build_wheel)."""
    out = tmp_path_factory.mktemp("wheel")
    done = build_wheel(out, tmp_path_factory.mktemp("source"))
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("lesson6_grader-*.whl")
    return built


def fresh_venv(python, path, wheel):
    """Create a venv and install the wheel into it (not editable); return its bin folder."""
    subprocess.run([python, "-m", "venv", str(path)], check=True, timeout=300)
    # --no-compile: pip would byte-compile all ~6,700 modules of the venv (about 25 CPU-s here); Python compiles
    # what the kit imports when it first runs, as it does in any venv whose files it may write.
    done = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
                           "--disable-pip-version-check", str(wheel)], capture_output=True, text=True,
                          timeout=INSTALL_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]
    return path / "bin"


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """Return a function giving the bin folder of a venv with the wheel installed: one per Python version."""
    venvs = {}

    def venv_of(version):
        if version not in venvs:
            venvs[version] = fresh_venv(interpreter(version), tmp_path_factory.mktemp(f"venv{version}"), wheel)
        return venvs[version]

    return venv_of


# Whether computing the probe's request imported TensorFlow (it should not, where the lesson's record holds).
ASKED_WITHOUT_KERAS = ("import sys; from grader.checker.hidden_tests.cases import probe_request; probe_request(); "
                       "print('tensorflow' in sys.modules)")


def run_installed(bin_dir, *args, cwd, timeout=GRADE_SECONDS, env=None):
    """Run a command of the installed kit (`grader`, `python`) from cwd, outside the source tree."""
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": "",
                                                **(env or {})})


def grade(bin_dir, submission, cwd):
    """Run the installed `grader grade --no-training` from outside the source tree; return the JSON report."""
    done = run_installed(bin_dir, "grader", "grade", str(submission), "--no-training", "--format", "json", cwd=cwd)
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
    """As root (Gradescope's case) the probe ran as a uid of its grader's own in lesson6-probe's group; otherwise the
    report says why not."""
    user = next(layer for layer in results["extra_data"]["sandbox"] if layer["name"] == "user")
    if os.geteuid() == 0:
        assert user["held"] and user["reason"].startswith("runs as uid "), user
        assert "a uid of this grading process's own, in the group of lesson6-probe" in user["reason"], user
    else:
        assert not user["held"] and "does not run as root" in user["reason"], user


@pytest.mark.timeout(WALK_SECONDS)                 # two installs: the kit's venv, then setup.sh's
def test_gradescope_setup_and_run_autograder_on_a_fake_tree(installed, tmp_path):
    # The zip comes from an installed kit with no --kit-source and no --smoke-submission: the wheel it bundles is
    # rebuilt from the installed files, and setup.sh below installs it and grades the smoke submission it carries.
    zipped = tmp_path / "autograder.zip"
    built = run_installed(installed(VERSIONS[0]), "grader", "gradescope", str(zipped), "--grade-args=--no-training",
                          cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    with zipfile.ZipFile(zipped) as archive:
        names = archive.namelist()
    assert [name for name in names if name.startswith("kit/lesson6_grader-") and name.endswith(".whl")], names
    assert {"smoke/cnn.py", "smoke/shape_math.py"} <= set(names), names
    # Gradescope's /autograder and the venv are open to other users; pytest's tmp_path (mode 700) is not.
    area = Path(tempfile.mkdtemp(prefix="lesson6-gradescope-"))
    area.chmod(0o755)
    root = area / "autograder"
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(root / "source")
    venv = area / "gradescope-venv"
    env = {"GRADER_VENV": str(venv), "PATH": f"{Path(gradescope_python()).parent}:{os.environ['PATH']}"}
    try:
        grade_on_the_fake_tree(root, env, tmp_path)
    finally:
        shutil.rmtree(area, ignore_errors=True)


def grade_on_the_fake_tree(root, env, tmp_path):
    """Run setup.sh (it grades the reference with the assignment's flags), then run_autograder on a mutant.

    The reference through run_autograder with full marks: the walk-through below, on both Python versions.
    """
    setup = run_script(root / "source" / "setup.sh", root, env, INSTALL_SECONDS)
    assert setup.returncode == 0, (setup.stdout + setup.stderr)[-4000:]
    # setup.sh recorded the expectations for the Keras it installed: grades import no Keras before the probe
    asked = subprocess.run([str(Path(env["GRADER_VENV"]) / "bin" / "python"), "-c", ASKED_WITHOUT_KERAS],
                           capture_output=True, text=True, timeout=GRADE_SECONDS, cwd=tmp_path)
    assert asked.returncode == 0 and asked.stdout.split() == ["False"], asked.stdout + asked.stderr[-2000:]
    assert f"the known-correct submission got {90 + BONUS} / 90" in setup.stdout
    assert not (root / "source" / "smoke").exists()           # graded at build time, then removed
    shutil.copytree(mutant(tmp_path / "mutant"), root / "submission")
    done = run_script(root / "source" / "run_autograder", root, env, GRADE_SECONDS)
    assert done.returncode == 0, done.stdout[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert_mutant_loses_in_build_cnn(results)
    assert_probe_user(results)


# --- the newcomer's walk-through ------------------------------------------------------------------------------------


def browser():
    """Return a headless-capable Chromium, or skip saying none is installed (.ci/run installs one)."""
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if not found:
        pytest.skip(f"no Chromium on this machine (looked for {', '.join(BROWSERS)} on PATH); "
                    "`apt-get install chromium` gives one")
    return found


def open_in_browser(chromium, page, screenshot):
    """Open a page in headless Chromium: write a screenshot, and return the text of the page it rendered."""
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,2400"]
    shot = subprocess.run([*common, f"--screenshot={screenshot}", page.as_uri()], capture_output=True, text=True,
                          timeout=BROWSER_SECONDS)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=BROWSER_SECONDS)
    assert dom.returncode == 0 and "</body>" in dom.stdout, dom.stderr[-2000:]
    return html.unescape(re.sub(r"<[^>]+>", " ", dom.stdout))


def small_class(folder):
    """Write a class of three: the reference, the Flatten-head mutant, and untouched stubs; return {id: status}."""
    folder.mkdir()
    shutil.copytree(SOLUTIONS, folder / "alice", ignore=shutil.ignore_patterns("__pycache__"))
    mutant(folder / "bob")
    (folder / "carol").mkdir()
    for stub in EXERCISES.glob("*.py"):
        if not stub.name.startswith(("test_", "conftest", "lesson_checks")):
            shutil.copyfile(stub, folder / "carol" / stub.name)
    return ("alice", "bob", "carol")


@pytest.mark.timeout(WALK_SECONDS)
@pytest.mark.parametrize("version", VERSIONS)
def test_a_newcomer_walks_the_readme_from_a_wheel(version, installed, tmp_path):
    chromium = browser()
    bin_dir = installed(version)
    home = tmp_path / "newcomer"                       # no clone here: only what the wheel installed
    shutil.copytree(SOLUTIONS, home / "solutions", ignore=shutil.ignore_patterns("__pycache__"))

    # Instructor: grade the reference (README's quick start), text report on stdout.
    graded = run_installed(bin_dir, "grader", "grade", "solutions", "--no-training", cwd=home)
    assert graded.returncode == 0 and f"Score: {90 + BONUS} / 90" in graded.stdout, graded.stdout + graded.stderr
    # Recorded for the Keras this venv has (Python 3.10 gets an older one than the kit's record), the expectations
    # are read, not derived: with --import-after-probe one TensorFlow process runs at a time.
    recorded = run_installed(bin_dir, "grader", "calibrate", "--expectations", cwd=home)
    assert recorded.returncode == 0 and "expectations recorded in" in recorded.stdout, recorded.stderr[-2000:]
    asked = run_installed(bin_dir, "python", "-c", ASKED_WITHOUT_KERAS, cwd=home)
    assert asked.returncode == 0 and asked.stdout.split() == ["False"], asked.stdout + asked.stderr[-2000:]

    # The student release, from the installed kit; its own pytest: the stubs fail, the student's work passes.
    released = run_installed(bin_dir, "grader", "release", "student", cwd=home)
    assert released.returncode == 0, released.stderr[-3000:]
    stubs = run_installed(bin_dir, "python", "-m", "pytest", "-q", cwd=home / "student")
    assert stubs.returncode == 1 and "conv_output_size() is not implemented yet." in stubs.stdout, stubs.stdout[-3000:]
    for module in SOLUTIONS.glob("*.py"):
        shutil.copyfile(module, home / "student" / "exercises" / module.name)
    filled = run_installed(bin_dir, "python", "-m", "pytest", "-q", cwd=home / "student")
    assert filled.returncode == 0 and " passed" in filled.stdout, filled.stdout[-3000:]

    # Gradescope: the zip with no flag, and its run_autograder on a fake /autograder tree with this venv's grader.
    built = run_installed(bin_dir, "grader", "gradescope", "autograder.zip", cwd=home)
    assert built.returncode == 0, built.stderr[-3000:]
    root = home / "autograder"
    with zipfile.ZipFile(home / "autograder.zip") as archive:
        archive.extractall(root / "source")
    shutil.copytree(SOLUTIONS, root / "submission", ignore=shutil.ignore_patterns("__pycache__"))
    ran = run_script(root / "source" / "run_autograder", root,
                     {"GRADER_BIN": str(bin_dir / "grader"), "GRADER_ARGS": "--no-training"}, GRADE_SECONDS)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    assert_full_marks(json.loads((root / "results" / "results.json").read_text()))

    # A small class with reports, and its pages as a browser shows them.
    students = small_class(home / "class")
    batch = run_installed(bin_dir, "grader", "batch", "class", "--no-training", "--output", "grades.csv",
                          "--reports", "reports", cwd=home, timeout=GRADE_SECONDS * 2)
    assert batch.returncode == 0, batch.stderr[-3000:]
    rows = {row["id"]: row for row in csv.DictReader((home / "grades.csv").open())}
    assert set(rows) == set(students) and all(row["status"] == "graded" for row in rows.values()), rows
    # The reference gets the lesson's points and the bonus; the mutant loses points in the networks only.
    assert (float(rows["alice"]["score"]), float(rows["alice"]["bonus"])) == (90 + BONUS, BONUS), rows["alice"]
    full = {part: sum(tests.values()) for part, tests in load_points().items()}
    bob = {part: float(rows["bob"][part]) for part in ("shape_math", "augmentation", "build_cnn")}
    assert bob["shape_math"] == full["shape_math"] and bob["augmentation"] == full["augmentation"], bob
    assert bob["build_cnn"] < full["build_cnn"], bob
    summary = open_in_browser(chromium, home / "reports" / "summary.html", tmp_path / "summary.png")
    report = open_in_browser(chromium, home / "reports" / "bob" / "report.html", tmp_path / "report.png")
    parts = [part for part in PARTS if part != "training"]          # --no-training leaves it out
    assert [part for part in parts if part not in summary] == []
    assert [part for part in parts if part not in report] == [] and "bob" in report
    # Every student who lost points is named where the summary lists who made each mistake.
    assert [who for who in ("bob", "carol") if who not in summary] == []
