"""The second lesson, lessons/mnist_convnet (Chollet's MNIST convnet): graded by the same engine, from its data alone.

The lesson is chosen per process (GRADER_LESSON, which `--lesson` sets), so everything here runs in a subprocess:
the expectations derived from its reference, its reference's grade, four mistakes losing points in their part with
one-line messages, its calibration record, and the commands that take --lesson (batch, gradescope, release).
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_python

LESSON = ROOT / "lessons" / "mnist_convnet"
REFERENCE = LESSON / "solutions" / "convnet.py"
PART = "build_convnet"
# The mistakes of the issue, each an edit of the reference, with a sentence its part must say.
MUTANTS = {
    "kernel_5x5": (("Conv2D(filters=32, kernel_size=3,", "Conv2D(filters=32, kernel_size=5,"), "kernel_size=5"),
    "missing_pool": (("    x = layers.MaxPooling2D(pool_size=2)(x)\n    x = layers.Conv2D(filters=128",
                      "    x = layers.Conv2D(filters=128"), "Did you forget a MaxPooling2D(2)?"),
    "no_softmax": (('layers.Dense(num_classes, activation="softmax")', "layers.Dense(num_classes)"),
                   "activation='softmax'"),
    "same_padding": (('kernel_size=3, activation="relu")(inputs)',
                      'kernel_size=3, padding="same", activation="relu")(inputs)'), "Did you use padding='same'?"),
}


def in_lesson(code, timeout=300):
    """Run Python code with the second lesson chosen; return its stdout (the code's last line prints JSON)."""
    done = run_python("-c", code, env={"GRADER_LESSON": str(LESSON)}, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def grader(*args, cwd, timeout=900):
    """Run `grader ARGS --lesson lessons/mnist_convnet`; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "grader", *args, "--lesson", str(LESSON)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def lost(report):
    """Return {part: [messages]} of the tests that lost points in a JSON report."""
    found = {}
    for test in report["tests"]:
        if test["score"] < test["max_score"]:
            found.setdefault(test["tags"][0], []).append(test["output"])
    return found


def test_the_expectations_are_chollets_numbers():
    found = in_lesson("import json; from grader.checker.reference import expectations; "
                      "n = expectations()['networks']['build_convnet']; "
                      "print(json.dumps([n['input_shape'], n['total_params'], [s[2] for s in n['stages']], "
                      "n['output_activation'], n['num_classes_followed']]))")
    shape, total, per_stage, activation, follows = found
    assert shape == [28, 28, 1] and total == 104_202
    assert [params for params in per_stage if params] == [320, 18_496, 73_856, 11_530]
    assert activation == "softmax" and follows


def test_the_lesson_runs_only_the_checks_its_points_table_lists():
    # No augmentation, Rescaling or GAP head in Chollet's network: those checks are not listed, so not run.
    points = (LESSON / "points.toml").read_text()
    assert "test_global_average_pooling_head" not in points and "test_rescaling_after_augmentation" not in points
    found = in_lesson("import json; from grader.lesson import manifest; "
                      "print(json.dumps([manifest.PARTS, manifest.BUILDER_PARTS, manifest.CALLS, "
                      "manifest.SHAPE_MATH]))")
    assert found == [["build_convnet", "training"], {"build_convnet": "build_convnet"}, {}, []]


def test_the_synthetic_set_is_drawn_at_the_lessons_shape():
    found = in_lesson("import json; from grader.training import check; "
                      "x, y, xt, yt = check.load_split('synthetic', 0, check.Budget(40, 20, 1, 16)); "
                      "print(json.dumps([list(x.shape), list(xt.shape), sorted(set(y.tolist())), "
                      "check.lesson_data()[2]]))")
    assert found == [[40, 28, 28, 1], [20, 28, 28, 1], list(range(10)), False]  # softmax out: not from logits


def test_the_calibration_record_is_the_lessons_own_and_backs_its_threshold():
    record = json.loads((LESSON / "calibration.json").read_text())["synthetic"]
    reference = record["models"]["reference"]
    assert record["lesson"].startswith("MNIST convnet") and reference["accuracies"]
    assert 0.1 < record["threshold"] < reference["min"]
    for name, model in record["models"].items():
        if name != "reference" and model["separable"]:
            assert max(model["accuracies"]) < record["threshold"], name
    found = in_lesson("import json; from grader.training import check; "
                      "print(json.dumps([str(check.calibration_path()), check.threshold_for('synthetic'), "
                      "check.calibration_problem('synthetic')]))")
    assert found == [str(LESSON / "calibration.json"), record["threshold"], ""]


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_the_stubs_and_lesson_checks_are_the_generators_output(tmp_path):
    in_lesson(f"import json; from grader.lesson.stubs import write_student_files; "
              f"write_student_files({str(LESSON / 'solutions')!r}, {str(tmp_path)!r}); print('[]')")
    for name in ("convnet.py", "lesson_checks.py", "lesson_checks.json", "pytest.ini"):
        assert (tmp_path / name).read_text() == (LESSON / "exercises" / name).read_text(), f"regenerate {name}"


@pytest.fixture(scope="module")
def mutants(tmp_path_factory):
    """Write the four mistakes as submissions into one class folder."""
    folder = tmp_path_factory.mktemp("mnist_class")
    source = REFERENCE.read_text()
    for name, ((old, new), _said) in MUTANTS.items():
        assert old in source, name
        (folder / name).mkdir()
        (folder / name / "convnet.py").write_text(source.replace(old, new, 1))
    return folder


@pytest.mark.slow
def test_the_reference_gets_full_marks(tmp_path):
    done = grader("grade", str(LESSON / "solutions"), "--no-training", "--no-cache", "--format", "json",
                  "--output", str(tmp_path / "report.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert lost(report) == {} and report["score"] == report["max_score"] > 0


@pytest.fixture(scope="module")
def mutant_reports(mutants, tmp_path_factory):
    """Grade the four mistakes with `grader batch --lesson`; return {name: JSON report}."""
    out = tmp_path_factory.mktemp("mnist_batch")
    done = grader("batch", str(mutants), "--no-training", "--no-cache", "--reports", str(out / "reports"),
                  "--output", str(out / "grades.csv"), cwd=out)
    assert done.returncode == 0, done.stderr[-2000:]
    header = (out / "grades.csv").read_text().splitlines()[0]
    assert header.startswith("id,score,max_score,bonus,build_convnet,training,"), header  # the lesson's parts
    return {name: json.loads((out / "reports" / name / "report.json").read_text()) for name in MUTANTS}


@pytest.mark.slow
@pytest.mark.parametrize("name", MUTANTS)
def test_each_mistake_loses_points_in_its_part_with_one_line_messages(mutant_reports, name):
    found = lost(mutant_reports[name])
    assert set(found) == {PART}, found
    problems = [line for message in found[PART] for line in message.splitlines()]
    assert all(line.startswith("Called build_convnet()") for line in problems), problems  # a sentence per line
    assert any(MUTANTS[name][1] in line for line in problems), problems


@pytest.mark.slow
def test_training_the_reference_passes_the_calibrated_check(tmp_path):
    done = grader("grade", str(LESSON / "solutions"), "--no-cache", "--format", "json",
                  "--output", str(tmp_path / "report.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert lost(report) == {} and any(test["tags"][0] == "training" for test in report["tests"])


def test_gradescope_bakes_the_lesson_into_the_zip(tmp_path):
    done = grader("gradescope", str(tmp_path / "autograder.zip"), "--grade-args=--no-training", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    with zipfile.ZipFile(tmp_path / "autograder.zip") as archive:
        names = set(archive.namelist())
        run_autograder = archive.read("run_autograder").decode()
        setup = archive.read("setup.sh").decode()
    assert {"lesson/lesson.toml", "lesson/points.toml", "lesson/calibration.json", "lesson/expectations.json",
            "lesson/solutions/convnet.py",
            "smoke/convnet.py"} <= names
    assert not any(name.startswith("lesson/exercises") for name in names)
    assert '--lesson "$ROOT/source/lesson"' in run_autograder
    assert '--lesson "$AUTOGRADER_ROOT/source/lesson"' in setup


@pytest.mark.slow
def test_the_zip_grades_a_submission_by_the_baked_lesson(tmp_path):
    from tests.test_gradescope import autograder_tree, run_autograder

    done = grader("gradescope", str(tmp_path / "autograder.zip"), "--grade-args=--no-training", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    root = autograder_tree(tmp_path, tmp_path / "autograder.zip", {"convnet.py": REFERENCE.read_text()})
    process, results = run_autograder(root)
    assert results["score"] == 30 and all(test["score"] == test["max_score"] for test in results["tests"]), \
        process.stdout[-2000:]


def test_release_writes_the_lessons_student_repository(tmp_path):
    done = grader("release", str(tmp_path / "release"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    release = tmp_path / "release"
    shipped = sorted(path.name for path in (release / "exercises").iterdir())
    assert shipped == ["conftest.py", "convnet.py", "lesson_checks.json", "lesson_checks.py", "test_convnet.py"]
    # The checks are the same code for every lesson: only their data differs.
    checks = (release / "exercises" / "lesson_checks.py").read_text()
    assert checks == (ROOT / "exercises" / "lesson_checks.py").read_text()
    assert "104202" in (release / "exercises" / "lesson_checks.json").read_text()
    assert "raise NotImplementedError" in (release / "exercises" / "convnet.py").read_text()
    assert "104,202 params" in (release / "README.md").read_text()
    assert "exercises/test_convnet.py" in (release / ".github" / "workflows" / "grade.yml").read_text()
    assert "MaxPooling2D(pool_size=2)(x)" not in (release / "exercises" / "convnet.py").read_text()


def test_the_engine_holds_no_python_for_the_second_lesson():
    names = ("build_convnet", "mnist", "convnet")
    offenders = [f"{path.relative_to(ROOT)}: {name}" for path in sorted((ROOT / "grader").rglob("*.py"))
                 for name in names if name in path.read_text(encoding="utf-8").lower()]
    assert not offenders, offenders


def test_probes_forked_from_a_zygote_block_the_chosen_lesson_too(monkeypatch):
    # The zygote runs in a clean environment and makes each probe's isolation plan: it must know the lesson, whose
    # folder (outside the kit for a course's own lessons) the plan blocks.
    from grader.sandbox.zygote import zygote_environment

    monkeypatch.setenv("GRADER_LESSON", str(LESSON))
    assert zygote_environment(Path("/tmp/home"), "token")["GRADER_LESSON"] == str(LESSON)
    monkeypatch.delenv("GRADER_LESSON")
    assert "GRADER_LESSON" not in zygote_environment(Path("/tmp/home"), "token")


@pytest.mark.slow
def test_a_probe_cannot_read_a_lesson_outside_the_kit(tmp_path):
    # A course keeps its lessons anywhere: the reference there is as closed to student code as the kit's own.
    import shutil

    lesson = shutil.copytree(LESSON, tmp_path / "course" / "mnist_convnet")
    spy = (f"try:\n    open({str(lesson / 'solutions' / 'convnet.py')!r}).read()\n    print('READ THE LESSON')\n"
           f"except OSError as error:\n    print('blocked:', error)\n\n")
    (tmp_path / "class" / "spy").mkdir(parents=True)
    (tmp_path / "class" / "spy" / "convnet.py").write_text(spy + REFERENCE.read_text())
    done = subprocess.run([sys.executable, "-m", "grader", "batch", str(tmp_path / "class"), "--no-training",
                           "--no-cache", "--reports", str(tmp_path / "reports"), "--output",
                           str(tmp_path / "grades.csv"), "--lesson", str(lesson)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "reports" / "spy" / "report.json").read_text())
    printed = json.dumps(report)
    assert "blocked:" in printed and "READ THE LESSON" not in printed, printed[-2000:]


def test_the_checks_hints_name_the_lessons_own_layers():
    # The engine's hints follow from the reference: Chollet's unpadded convolutions, his Flatten head, his softmax.
    import importlib.util

    import keras
    from keras import layers

    spec = importlib.util.spec_from_file_location("mnist_lesson_checks", LESSON / "exercises" / "lesson_checks.py")
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    stages = checks.network(PART)["stages"]
    inputs = keras.Input(shape=(28, 28, 1))
    no_conv = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(inputs)))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(layers.Conv2D(64, 3, activation="relu")(layers.MaxPooling2D(2)(x)))
    x = layers.Conv2D(128, 3, activation="relu")(x)
    no_flatten = keras.Model(inputs, layers.Dense(10, activation="softmax")(x))
    five = keras.Model(inputs, layers.Dense(5, activation="softmax")(layers.Flatten()(x)))
    no_pool = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(layers.Conv2D(8, 3)(inputs))))
    assert checks.check_has_convolutions(no_conv, "build_convnet()") == [
        "Called build_convnet(). Your model has no Conv2D layer, so it is not the lesson's CNN: the network earns "
        "nothing until the model is built from the lesson's Conv2D(..., 3, activation='relu') blocks."]
    assert checks.check_stage_shapes(no_flatten, "c()", stages)[0].endswith(" Add Flatten before the Dense head.")
    assert checks.check_stage_shapes(five, "c()", stages)[0].endswith(
        " The head is Dense(num_classes, activation='softmax').")
    assert checks.check_max_pooling(no_pool, "c()") == [
        "Called c(). The model has no MaxPooling2D; the lesson's network halves the feature map with MaxPooling2D(2)."]
