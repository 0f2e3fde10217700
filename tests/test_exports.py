"""Submission ids, rosters, Gradescope exports, LMS gradebook CSVs and merging re-graded students."""

import csv
from pathlib import Path

import pytest

from grader import exports
from grader.exports import Student
from grader.render.gradebook import CSV_FIELDS, csv_row
from grader.results import FAILED, PASSED, CheckResult, GradingResults
from grader.store import write_gradebook

# A submission_metadata.yml as Gradescope's "Download Submissions" writes it (Ruby symbols, nested results).
GRADESCOPE_METADATA = """\
---
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '0042'
    :email: ada@example.edu
  :created_at: 2024-03-01 10:00:00.000000000 -08:00
  :score: 90.0
  :results:
    :tests:
    - :name: 'shape_math: conv_output_size'
      :score: 4.0
submission_102:
  :submitters:
  - :name: "Grace O'Hopper"
    :sid: '0043'
    :email: grace@example.edu
  - :name: Alan Turing
    :sid: '0044'
    :email: alan@example.edu
  :score: 70.0
"""


def results(submission, score, status="graded"):
    """Return a GradingResults with one test worth 90 points, scored `score`."""
    if status != "graded":
        return GradingResults(submission, status=status, notes=["The worker died."])
    test = CheckResult("all", "training", score, 90, PASSED if score == 90 else FAILED)
    return GradingResults(submission, tests=[test], execution_time=1.0)


def read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("name, expected", [
    ("bob.ipynb", "bob"), ("dave.zip", "dave"), ("carol.py", "carol"), ("alice", "alice"),
    ("j.r.smith.PY", "j.r.smith"), ("notes.txt", "notes.txt"), (".py", ".py"),
])
def test_strip_extension(name, expected):
    assert exports.strip_extension(name) == expected


def test_submission_ids_keep_the_extension_where_two_would_collide():
    ids = exports.submission_ids(["in/bob.py", "in/bob.ipynb", "in/carol.zip", "in/submission_101"])
    assert ids == {Path("in/bob.py"): "bob.py", Path("in/bob.ipynb"): "bob.ipynb", Path("in/carol.zip"): "carol",
                   Path("in/submission_101"): "submission_101"}


def test_select_submissions_by_id_with_or_without_extension():
    paths = [Path("bob.ipynb"), Path("carol.py"), Path("dave.zip")]
    assert exports.select_submissions(paths, ["bob", "dave.zip"]) == [Path("bob.ipynb"), Path("dave.zip")]


def test_select_submissions_names_the_ids_it_does_not_know():
    with pytest.raises(ValueError) as info:
        exports.select_submissions([Path("bob.ipynb")], ["bob", "zoe"], folder="class/")
    assert str(info.value) == "No submission with the id zoe in class/. Expected one of: bob"


def test_read_roster_maps_ids_without_extensions_to_students(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("\ufeffID,Name,Email,SIS ID,Section\nbob.ipynb,Bob Smith,bob@x.edu,123,A\n"
                    "team1,Ann,ann@x.edu,1,B\nteam1,Ben,ben@x.edu,2,B\n", encoding="utf-8")
    roster = exports.read_roster(path)
    assert roster["bob"] == [Student(name="Bob Smith", email="bob@x.edu", sis_id="123", section="A")]
    assert [s.name for s in roster["team1"]] == ["Ann", "Ben"]
    assert exports.roster_names(roster) == {"bob": "Bob Smith", "team1": "Ann, Ben"}


@pytest.mark.parametrize("text, problem", [
    ("name,email\nBob,b@x\n", "no `id` column"),
    ("id,name,mail\nbob,Bob,b@x\n", "unknown columns ['mail']"),
    ("id,name\n,Bob\n", "line 2 has no id"),
])
def test_read_roster_says_what_is_wrong(tmp_path, text, problem):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        exports.read_roster(path)
    assert str(info.value).startswith(f"Invalid roster {path}: {problem}. Expected a CSV")


def test_gradescope_metadata_gives_each_submission_its_submitters(tmp_path):
    (tmp_path / exports.GRADESCOPE_METADATA).write_text(GRADESCOPE_METADATA, encoding="utf-8")
    roster = exports.gradescope_roster(tmp_path)
    assert roster == {
        "submission_101": [Student(name="Ada Lovelace", email="ada@example.edu", sis_id="0042")],
        "submission_102": [Student(name="Grace O'Hopper", email="grace@example.edu", sis_id="0043"),
                           Student(name="Alan Turing", email="alan@example.edu", sis_id="0044")],
    }


def test_a_folder_without_metadata_is_not_a_gradescope_export(tmp_path):
    assert exports.gradescope_roster(tmp_path) is None


ROSTER = {
    "bob": [Student(name="Smith, Bob", email="bob@x.edu", sis_id="S1", canvas_id="11", section="Lab A")],
    "carol": [Student(name="=cmd|' /C calc'!A0", email="carol@x.edu", sis_id="S2", canvas_id="12")],
    "team": [Student(name="Ann", email="ann@x.edu", sis_id="S3"), Student(name="Ben", email="ben@x.edu", sis_id="S4")],
}


@pytest.fixture
def rows():
    return [csv_row(results("bob.ipynb", 72.5)), csv_row(results("carol", 0, status="error")),
            csv_row(results("team", 90)), csv_row(results("zoe.py", 10))]


def test_canvas_csv_has_canvas_columns_points_possible_and_one_row_per_student(rows, tmp_path):
    path = tmp_path / "canvas.csv"
    missing = exports.write_canvas_csv(rows, ROSTER, path, assignment="Lesson 6", assignment_id="4321",
                                       points_possible=90)
    table = read(path)
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lesson 6 (4321)"]
    assert table[1] == ["    Points Possible", "", "", "", "", "90"]
    assert table[2] == ["Smith, Bob", "11", "S1", "bob@x.edu", "Lab A", "72.5"]
    assert table[3][0] == "'=cmd|' /C calc'!A0" and table[3][5] == ""  # no formula; blank: grading failed
    assert [row[0] for row in table[4:]] == ["Ann", "Ben"] and {row[5] for row in table[4:]} == {"90"}
    assert list(missing) == ["zoe.py"] and "not in the roster" in missing["zoe.py"]


def test_canvas_column_of_a_new_assignment_has_no_id():
    assert exports.canvas_column("Lesson 6") == "Lesson 6"


def test_moodle_csv_identifies_users_by_email_and_id_number(rows, tmp_path):
    path = tmp_path / "moodle.csv"
    missing = exports.write_moodle_csv(rows, ROSTER, path, grade_item="Lesson 6 CNNs")
    table = read(path)
    assert table[0] == ["Email address", "ID number", "Full name", "Lesson 6 CNNs", "Feedback"]
    assert table[1] == ["bob@x.edu", "S1", "Smith, Bob", "72.5", "72.5 / 90 points"]
    assert table[2][:4] == ["carol@x.edu", "S2", "'=cmd|' /C calc'!A0", ""]
    assert table[2][4] == "The worker died."
    assert [row[0] for row in table[3:]] == ["ann@x.edu", "ben@x.edu"]
    assert list(missing) == ["zoe.py"] and "not in the roster" in missing["zoe.py"]


def test_merge_gradebook_replaces_regraded_rows_and_appends_new_ones(tmp_path):
    path = tmp_path / "grades.csv"
    write_gradebook([results("alice", 90), results("bob.ipynb", 10), results("carol", 50)], path)
    merged = exports.merge_gradebook(path, [results("bob", 80), results("dave", 30)])
    assert [(row["id"], str(row["score"])) for row in merged] == \
        [("alice", "90"), ("bob", "80"), ("carol", "50"), ("dave", "30")]
    assert [(row["id"], row["score"]) for row in exports.read_gradebook(path)] == \
        [("alice", "90"), ("bob", "80"), ("carol", "50"), ("dave", "30")]


def test_merge_gradebook_into_a_missing_file_writes_the_new_rows(tmp_path):
    path = tmp_path / "grades.csv"
    exports.merge_gradebook(path, [results("bob", 80)])
    assert read(path)[0] == list(CSV_FIELDS) and read(path)[1][0] == "bob"


def test_merge_gradebook_refuses_a_file_that_is_not_a_gradebook(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text("Student,Score\nbob,3\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        exports.merge_gradebook(path, [results("bob", 80)])
    assert str(info.value).startswith(f"Cannot merge into {path}: its header is not the gradebook's.")
    assert "Received: ['Student', 'Score']" in str(info.value)
