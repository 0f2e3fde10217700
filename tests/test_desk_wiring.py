"""The instructor's desk wired in: `grader batch`'s summary, roster, LMS imports and --only; per-test visibility
and durations from the hidden tests; the training pictures of the report folder."""

import csv
import os
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import grader.batch
from grader.checker.points import load_points, load_table
from grader.checker.run import run_hidden_tests
from grader.commands import batch as batch_command
from grader.exports import CANVAS_FIELDS, MOODLE_FIELDS
from grader.results import AFTER_DUE_DATE, AFTER_PUBLISHED, HIDDEN, VISIBLE, CheckResult, GradingResults
from grader.store import write_reports

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def reporting_stand_in(path, options, trainer, reports=None, submission=None):
    """Grade instantly, writing the reports as grade_one does: a file that says "fail" fails its one test."""
    failed = Path(path).is_file() and Path(path).read_text() == "fail"
    test = CheckResult(name="shape_math: stand-in", part="shape_math", score=0 if failed else 4, max_score=4,
                       status="failed" if failed else "passed", output="Expected 30. Received: 32" if failed else "")
    results = GradingResults(submission=submission, tests=[test], execution_time=0.01)
    if reports:
        write_reports(results, Path(reports) / submission)
    return results


@pytest.fixture
def stand_in(monkeypatch):
    """Make `grader batch` grade with reporting_stand_in, in one real worker."""
    real = grader.batch.grade_batch
    monkeypatch.setattr(grader.batch, "grade_batch",
                        lambda paths, **kwargs: real(paths, **{**kwargs, "jobs": 1, "grader": reporting_stand_in}))


def make_folder(folder, entries):
    folder.mkdir()
    for name, text in entries.items():
        (folder / name).write_text(text)
    return folder


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_batch_writes_the_summary_and_the_lms_imports_from_a_roster(tmp_path, stand_in, capsys):
    folder = make_folder(tmp_path / "class", {"alice.py": "", "bob.ipynb": "fail", "carol.zip": ""})
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email,sis_id\nalice.py,Alice Smith,alice@uni.edu,1001\nbob,Bob Jones,bob@uni.edu,1002\n")
    paths = {name: tmp_path / name for name in ("grades.csv", "reports", "canvas.csv", "moodle.csv")}
    code = batch_command.main(folder=str(folder), output=str(paths["grades.csv"]), reports=str(paths["reports"]),
                              roster=str(roster), canvas=str(paths["canvas.csv"]), moodle=str(paths["moodle.csv"]),
                              allow_partial=True)  # carol is not in the roster: without it, refused before grading
    err = capsys.readouterr().err
    assert code == 0, err
    assert [row[0] for row in read_csv(paths["grades.csv"])] == ["id", "alice", "bob", "carol"]
    assert sorted(p.name for p in paths["reports"].iterdir()) == ["alice", "bob", "carol", "summary.html", "summary.md"]
    markdown = (paths["reports"] / "summary.md").read_text()
    assert "3 submissions: 3 graded" in markdown and "Bob Jones" in markdown  # the mistake names its student
    assert "Bob Jones" in (paths["reports"] / "summary.html").read_text()
    canvas = read_csv(paths["canvas.csv"])
    assert canvas[0] == [*CANVAS_FIELDS, "Lesson 6"] and canvas[1][0].strip() == "Points Possible"
    assert [(row[0], row[2], row[3], row[5]) for row in canvas[2:]] == [
        ("Alice Smith", "1001", "alice@uni.edu", "4"), ("Bob Jones", "1002", "bob@uni.edu", "0")]
    moodle = read_csv(paths["moodle.csv"])
    assert moodle[0] == [*MOODLE_FIELDS, "Lesson 6", "Lesson 6 bonus", "Feedback"]
    assert [row[:4] for row in moodle[1:]] == [["alice@uni.edu", "1001", "Alice Smith", "4"],
                                               ["bob@uni.edu", "1002", "Bob Jones", "0"]]
    assert err.count("1 submission is not in the") == 2 and err.count("carol is not in the roster") == 2


def test_only_regrades_some_students_into_the_gradebook_and_the_summary(tmp_path, stand_in, capsys):
    folder = make_folder(tmp_path / "class", {"alice.py": "", "bob.ipynb": "", "carol.zip": ""})
    grades, reports = tmp_path / "grades.csv", tmp_path / "reports"
    assert batch_command.main(folder=str(folder), output=str(grades), reports=str(reports)) == 0
    (folder / "bob.ipynb").write_text("fail")
    (folder / "alice.py").write_text("fail")  # changed, but not re-graded: its row must stay
    assert batch_command.main(folder=str(folder), output=str(grades), reports=str(reports), only=["bob.ipynb"]) == 0
    assert [(row[0], row[1]) for row in read_csv(grades)[1:]] == [("alice", "4"), ("bob", "0"), ("carol", "4")]
    markdown = (reports / "summary.md").read_text()
    assert "3 submissions: 3 graded" in markdown and "1 of 3" in markdown  # bob's failure among the whole class
    capsys.readouterr()
    assert batch_command.main(folder=str(folder), output=str(grades), only=["dave"]) == 2
    err = capsys.readouterr().err
    assert "No submission with the id dave" in err and "Expected one of: alice, bob, carol" in err


def test_a_gradescope_export_names_its_students_and_its_metadata_is_never_graded(tmp_path, stand_in, capsys):
    folder = make_folder(tmp_path / "export", {"submission_metadata.yml": textwrap.dedent("""\
        ---
        submission_101:
          :submitters:
          - :name: Ada Lovelace
            :sid: '42'
            :email: ada@uni.edu
          :score: 1.0
        """)})
    (folder / "submission_101").mkdir()
    (folder / "submission_101" / "cnn.py").write_text("")
    grades = tmp_path / "grades.csv"
    code = batch_command.main(folder=str(folder), output=str(grades), moodle=str(tmp_path / "moodle.csv"))
    assert code == 0, capsys.readouterr().err
    assert [row[0] for row in read_csv(grades)[1:]] == ["submission_101"]
    assert read_csv(tmp_path / "moodle.csv")[1][:4] == ["ada@uni.edu", "42", "Ada Lovelace", "4"]
    assert (tmp_path / "summary.html").is_file()  # next to the gradebook without --reports


# --- visibility and durations of the hidden tests --------------------------------------------------------------


def test_the_points_table_s_visibility_is_popped_and_checked(tmp_path):
    points = tmp_path / "points.toml"
    points.write_text('[training]\ntest_a = 2\n[filters]\ntest_b = 1\n'
                      '[visibility]\ntraining = "after_due_date"\n"filters.test_b" = "hidden"\n')
    assert load_table(points) == ({"training": {"test_a": 2}, "filters": {"test_b": 1}},
                                  {"training": AFTER_DUE_DATE, "filters.test_b": HIDDEN})
    assert load_points(points) == {"training": {"test_a": 2}, "filters": {"test_b": 1}}
    points.write_text('[training]\ntest_a = 2\n[visibility]\n"training.test_z" = "hidden"\n')
    with pytest.raises(ValueError, match="there is no test test_z under \\[training\\]. Expected one of: test_a"):
        load_table(points)


def test_the_kit_s_points_table_loads_with_its_visibility():
    points, visibility = load_table()
    assert "visibility" not in points and all(value in (VISIBLE, AFTER_DUE_DATE, AFTER_PUBLISHED, HIDDEN)
                                              for value in visibility.values())


HIDDEN_TEST_MODULE = '''
import time

import pytest


@pytest.fixture
def slow_setup():
    time.sleep(0.05)


@pytest.mark.part("training")
@pytest.mark.points(3)
@pytest.mark.visibility("after_published")
def test_later(slow_setup):
    """the test shown after publishing"""
    time.sleep(0.05)


@pytest.mark.part("filters")
@pytest.mark.points(1)
def test_unmarked():
    """a test without a visibility mark"""
'''


def test_check_results_carry_the_visibility_mark_and_setup_plus_call_seconds(tmp_path):
    (tmp_path / "test_hidden_visibility.py").write_text(HIDDEN_TEST_MODULE)  # a module name of its own
    later, unmarked = run_hidden_tests(types.SimpleNamespace(), tests_dir=tmp_path)
    assert (later.name, later.visibility, later.score) == ("training: the test shown after publishing",
                                                           AFTER_PUBLISHED, 3)
    assert later.seconds >= 0.1  # the fixture's 0.05 s and the test's 0.05 s, both counted
    assert unmarked.visibility == VISIBLE and unmarked.seconds is not None


# --- the training pictures ------------------------------------------------------------------------------------


def test_the_report_folder_gets_the_three_lesson_pictures_with_the_held_out_accuracy(tmp_path, monkeypatch):
    from grader.checker.session import GradingSession
    from grader.training import pictures

    seen = {}
    real = pictures.save_training_curve
    monkeypatch.setattr(pictures, "save_training_curve",
                        lambda *args, **kwargs: seen.update(kwargs) or real(*args, **kwargs))
    outcome = types.SimpleNamespace(history={"loss": [2.0, 1.5], "accuracy": [0.3, 0.5]}, threshold=0.45,
                                    accuracy=0.62, images=4160, first_kernel=np.zeros((3, 3, 3, 32)),
                                    feature_maps=np.ones((32, 32, 32)))
    session = GradingSession(probe=None, report_dir=tmp_path)
    session.save_training_pictures(outcome)
    assert seen == {"threshold": 0.45, "held_out_accuracy": 0.62, "images": 4160}
    assert sorted(session.artifacts) == ["feature_maps", "first_layer_filters", "training_curve"]
    for path in session.artifacts.values():
        assert Path(path).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    session = GradingSession(probe=None, report_dir=tmp_path / "cached")  # an outcome cached without the panel
    session.save_training_pictures(types.SimpleNamespace(**{**vars(outcome), "feature_maps": None}))
    assert sorted(session.artifacts) == ["first_layer_filters", "training_curve"]


def test_an_outcome_seen_before_gets_the_same_pictures_without_drawing_them_again(tmp_path, monkeypatch):
    from grader.training import pictures

    drawn = []
    real = pictures.save_figure
    monkeypatch.setattr(pictures, "save_figure", lambda figure, path: drawn.append(path) or real(figure, path))
    kept = {}  # what a Grader keeps for its process
    outcome = types.SimpleNamespace(history={"loss": [2.0, 1.5], "accuracy": [0.3, 0.5]}, threshold=0.45,
                                    accuracy=0.62, first_kernel=np.linspace(-1, 1, 864).reshape(3, 3, 3, 32),
                                    feature_maps=np.ones((32, 32, 32)))
    first = pictures.save_outcome_pictures(outcome, tmp_path / "alice", kept)
    assert len(drawn) == 3
    second = pictures.save_outcome_pictures(types.SimpleNamespace(**vars(outcome)), tmp_path / "bob", kept)
    assert len(drawn) == 3 and sorted(second) == sorted(first)
    for name in first:
        assert second[name].parent == tmp_path / "bob"
        assert second[name].read_bytes() == first[name].read_bytes()
    pictures.save_outcome_pictures(types.SimpleNamespace(**{**vars(outcome), "accuracy": 0.7}), tmp_path / "carol",
                                   kept)
    assert len(drawn) == 6  # another held-out accuracy is another curve
