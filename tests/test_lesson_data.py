"""The lesson is data: an instructor who edits the reference changes what is graded, with no grader file touched.

A copy of the kit's lesson (lesson.toml, points.toml, hidden_cases.json and solutions/) is edited as a course would
adapt it (a Dropout before build_cnn's head, RandomZoom(0.2); or a fifth conv block in build_cnn_v2 and another
num_classes default for build_cnn), then `grader grade ... --lesson COPY` grades the edited reference and the old one.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSON_FILES = ("lesson.toml", "points.toml", "hidden_cases.json")
HEAD = "    outputs = layers.Dense(num_classes)(x)\n"
EDITS = {"cnn.py": (HEAD, "    x = layers.Dropout(0.3)(x)\n" + HEAD, 1),
         "augmentation.py": ("RandomZoom(0.1)", "RandomZoom(0.2)", -1)}
POOL = "    x = layers.MaxPooling2D(2)(x)\n"
V2_LAST_BLOCK = '    x = layers.Conv2D(256, 3, padding="same", activation="relu")(x)\n' + POOL
FIFTH_BLOCK = '    x = layers.Conv2D(512, 3, padding="same", activation="relu")(x)\n' + POOL
# A fifth conv block in build_cnn_v2, and build_cnn's num_classes defaulting to 5 (its signature in lesson.toml too).
EDITS_2 = {"cnn.py": [(V2_LAST_BLOCK, V2_LAST_BLOCK + FIFTH_BLOCK, 1),
                      ("def build_cnn(num_classes=10)", "def build_cnn(num_classes=5)", 1)],
           "../lesson.toml": [('{ name = "build_cnn", call = "builder", signature = "(num_classes=10)"',
                               '{ name = "build_cnn", call = "builder", signature = "(num_classes=5)"', 1)]}


def grade(submission, lesson, tmp_path):
    """Return the JSON report of `grader grade submission --lesson lesson --no-training --no-cache`."""
    out = tmp_path / f"{Path(submission).parent.name}.json"
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--lesson", str(lesson),
                           "--no-training", "--no-cache", "--format", "json", "--output", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def lost(report):
    """Return {part: [messages]} of the parts that lost points."""
    found = {}
    for test in report["tests"]:
        if test["score"] < test["max_score"]:
            found.setdefault(test["tags"][0], []).append(test["output"])
    return found


def copy_lesson(folder, edits):
    """Copy the kit's lesson into folder and apply {file under solutions/: [(old, new, count)]}; return folder."""
    folder.mkdir()
    for name in LESSON_FILES:
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "solutions", folder / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    for name, changes in edits.items():
        path = folder / "solutions" / name
        text = path.read_text()
        for old, new, count in changes:
            assert old in text, (name, old)
            text = text.replace(old, new, count)
        path.write_text(text)
    return folder


@pytest.fixture(scope="module")
def edited_lesson(tmp_path_factory):
    return copy_lesson(tmp_path_factory.mktemp("course") / "lesson", {name: [edit] for name, edit in EDITS.items()})


@pytest.fixture(scope="module")
def edited_lesson_2(tmp_path_factory):
    return copy_lesson(tmp_path_factory.mktemp("course2") / "lesson", EDITS_2)


@pytest.mark.slow
def test_the_edited_reference_gets_full_marks_under_the_edited_lesson(edited_lesson, tmp_path):
    report = grade(edited_lesson / "solutions", edited_lesson, tmp_path)
    assert lost(report) == {}, lost(report)


@pytest.mark.slow
def test_the_old_reference_loses_points_where_the_lesson_changed(edited_lesson, tmp_path):
    old = tmp_path / "old" / "solutions"
    shutil.copytree(ROOT / "solutions", old, ignore=shutil.ignore_patterns("__pycache__"))
    found = lost(grade(old, edited_lesson, tmp_path))
    assert "build_cnn" in found and "augmentation" in found, found
    assert any("Dropout" in message for message in found["build_cnn"]), found["build_cnn"]
    assert any("RandomZoom(0.2)" in message for message in found["augmentation"]), found["augmentation"]
    assert set(found) <= {"augmentation", "build_cnn", "build_cnn_v2"}, found  # the builders reuse the block


def test_no_grader_file_names_the_edited_lesson():
    # The edits above reach the grade through the reference alone.
    texts = [path.read_text(encoding="utf-8") for path in (ROOT / "grader").rglob("*.py")]
    assert not any("Dropout(0.3)" in text or "RandomZoom(0.2)" in text for text in texts)


@pytest.mark.slow
def test_a_fifth_block_and_another_num_classes_default_reach_the_grade(edited_lesson_2, tmp_path):
    assert lost(grade(edited_lesson_2 / "solutions", edited_lesson_2, tmp_path)) == {}
    old = tmp_path / "old" / "solutions"
    shutil.copytree(ROOT / "solutions", old, ignore=shutil.ignore_patterns("__pycache__"))
    found = lost(grade(old, edited_lesson_2, tmp_path))
    assert set(found) == {"build_cnn", "build_cnn_v2"}, found
    assert any("Conv2D" in message and "512" in message for message in found["build_cnn_v2"]), found["build_cnn_v2"]
    assert any("(None, 5)" in message or "num_classes=5" in message for message in found["build_cnn"]), \
        found["build_cnn"]


def in_lesson(lesson, code):
    """Run Python code with GRADER_LESSON=lesson; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "GRADER_LESSON": str(lesson), "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_the_students_files_regenerate_from_the_edited_reference(edited_lesson_2, tmp_path):
    done = in_lesson(edited_lesson_2, f"from grader.lesson.stubs import write_student_files; "
                                      f"write_student_files({str(edited_lesson_2 / 'solutions')!r}, {str(tmp_path)!r})")
    assert done.returncode == 0, done.stderr[-2000:]
    stub = (tmp_path / "cnn.py").read_text()
    assert "def build_cnn(num_classes=5)" in stub and "Conv2D(512" not in stub.split("raise NotImplementedError")[-1]
    recorded = (tmp_path / "lesson_checks.json").read_text()
    assert recorded != (ROOT / "exercises" / "lesson_checks.json").read_text()
    assert "Conv2D(512" in recorded  # the v2 the students' visible tests compare with


def test_the_training_calibration_is_refused_once_the_trained_network_changed(edited_lesson, tmp_path):
    # The Dropout changes build_cnn, the network the training check trains: the kit's record no longer applies.
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(ROOT / "solutions"), "--lesson",
                           str(edited_lesson)], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "was measured on another network than the lesson's build_cnn()" in done.stderr
    assert f"grader calibrate --lesson {edited_lesson}" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_kits_own_calibration_holds_for_the_kits_lesson():
    # Known from the record's network_source, without importing Keras: `grader grade` starts its probe at once.
    done = in_lesson(ROOT, "import sys; from grader.training.check import calibration_problem; "
                           "print(repr(calibration_problem()), 'keras' in sys.modules)")
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "'' False", done.stderr[-2000:]


@pytest.mark.parametrize("network, refused", [("recorded", False), ("0123456789abcdef", True)])
def test_a_record_of_other_sources_is_judged_by_the_reference_s_network(tmp_path, network, refused):
    # Another Keras, or sources edited without changing the network: the record's network_source no longer matches,
    # so the reference's network is compared with the record's: as the lesson's expectations.json describes it,
    # still without importing Keras.
    from grader.training.check import CALIBRATION_PATH

    records = json.loads(CALIBRATION_PATH.read_text())
    records["synthetic"]["network_source"] = "not this kit"
    if network != "recorded":
        records["synthetic"]["network"] = network
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(records))
    done = in_lesson(ROOT, f"import sys; from grader.training.check import calibration_problem; "
                           f"print(repr(calibration_problem(path={str(path)!r})), 'keras' in sys.modules)")
    assert done.returncode == 0, done.stderr[-2000:]
    problem, keras_imported = done.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert keras_imported == "False"
    assert (problem != "''") == refused and (network in problem) == refused, problem


# --- the expectations recorded in the lesson folder (grader.checker.reference) ---------------------------------------
RECORD_CHECK = ("import json, sys; from grader.checker import reference; "
                "from grader.checker.hidden_tests.cases import probe_request; request = probe_request(); "
                "before = 'tensorflow' in sys.modules or 'keras' in sys.modules; read = reference.read_record(); "
                "print(json.dumps([before, read is not None, read is None or read == reference.derive()]))")


@pytest.mark.parametrize("lesson", [ROOT, ROOT / "lessons" / "mnist_convnet"], ids=["default", "mnist_convnet"])
def test_the_kits_lessons_record_their_expectations_and_the_probe_s_request_needs_no_keras(lesson):
    # --import-after-probe means one TensorFlow process at a time: the grader's request is read from the record.
    done = in_lesson(lesson, RECORD_CHECK)
    assert done.returncode == 0, done.stderr[-2000:]
    keras_before, fresh, same = json.loads(done.stdout.strip().splitlines()[-1])
    flag = "" if lesson == ROOT else f" --lesson {lesson.relative_to(ROOT)}"
    assert fresh, f"{lesson}/expectations.json is stale: run `grader calibrate --expectations{flag}` and commit it"
    assert not keras_before and same, (keras_before, same)


def test_a_record_of_another_reference_is_set_aside_and_the_expectations_derived(edited_lesson, tmp_path):
    # The kit's record copied beside an edited reference: its source no longer matches, so the grader derives.
    lesson = tmp_path / "lesson"
    shutil.copytree(edited_lesson, lesson)
    shutil.copy(ROOT / "expectations.json", lesson / "expectations.json")
    done = in_lesson(lesson, RECORD_CHECK)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, False, True]
    # The probe would rebuild the edited network (its Dropout), not the one the kit's record holds.
    assert "Dropout" not in json.loads((ROOT / "expectations.json").read_text())["expectations"]["configs"]["build_cnn"]
    done = in_lesson(lesson, "from grader.checker import reference; print('Dropout' in reference.reference_config("
                             "'build_cnn'))")
    assert done.stdout.strip().splitlines()[-1] == "True", done.stderr[-2000:]


def test_calibrate_expectations_writes_a_record_that_holds(tmp_path):
    lesson = copy_lesson(tmp_path / "lesson", {})
    done = subprocess.run([sys.executable, "-m", "grader", "calibrate", "--expectations", "--lesson", str(lesson)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0 and f"expectations recorded in {lesson / 'expectations.json'}" in done.stdout, \
        done.stderr[-2000:]
    done = in_lesson(lesson, RECORD_CHECK)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, True, True], done.stderr[-2000:]
