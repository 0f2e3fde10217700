"""The lesson is data: an instructor who edits the reference changes what is graded, with no grader file touched.

A copy of the kit's lesson (lesson.toml and solutions/) is edited as a course would adapt it (a Dropout before
build_cnn's head, RandomZoom(0.2)), then `grader grade ... --lesson COPY` grades the edited reference and the old one.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAD = "    outputs = layers.Dense(num_classes)(x)\n"
EDITS = {"cnn.py": (HEAD, "    x = layers.Dropout(0.3)(x)\n" + HEAD, 1),
         "augmentation.py": ("RandomZoom(0.1)", "RandomZoom(0.2)", -1)}


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


@pytest.fixture(scope="module")
def edited_lesson(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course") / "lesson"
    folder.mkdir()
    shutil.copy(ROOT / "lesson.toml", folder / "lesson.toml")
    shutil.copytree(ROOT / "solutions", folder / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    for name, (old, new, count) in EDITS.items():
        path = folder / "solutions" / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, count))
    return folder


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
