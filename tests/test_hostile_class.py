"""A hostile class's names and roster values cannot break the class's files.

Every CSV the kit writes stays one row per student whatever an id or a roster value holds (a line break, a quote, a
comma), no cell a spreadsheet opens runs as a formula, the columns an LMS matches students on are never altered (a
row whose match value looks like a formula is refused with a reason), a student's report folder never takes a class
file's place, and an LMS import that would leave students out is refused before grading unless --allow-partial.
"""

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from grader import exports
from grader.commands import batch as batch_command
from grader.exports import Student
from grader.render import FORMATS, render
from grader.render.escape import FORMULA_START
from grader.render.gradebook import CSV_FIELDS
from grader.render.summary import to_html, to_markdown
from grader.results import FAILED, PASSED, CheckResult, GradingResults
from grader.store import folder_name, report_folder, write_gradebook, write_summary
from grader.summary import summarise
from tests.conftest import run_python

HOSTILE_IDS = ["a\rb", "c\nd", 'e,"f"', "=1+1", "@SUM(1)", "-2+3", "+x", "\tz", "summary.html", "..", ".", "x/y",
               "50%", "summary%2Ehtml", "Summary.MD", "ok"]
HOSTILE_TEXT = ["=1+1", "@SUM(1)x@example.com", "-2+3", "+1", "\t=x", 'Smith, "Bob"', "two\nlines", "cr\ronly",
                "<script>alert(1)</script>", "a | b", "**bold**"]


def results(submission, score=1.0):
    test = CheckResult(name="shape_math: conv_output_size", part="shape_math", score=score, max_score=1,
                       status=PASSED if score == 1 else FAILED, output="Called conv_output_size(3, 3).")
    return GradingResults(submission=submission, tests=[test], execution_time=0.5)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def assert_no_formula_cell(rows):
    formulas = [cell for row in rows for cell in row if cell.startswith(FORMULA_START)]
    assert not formulas, f"cells a spreadsheet would run: {formulas}"


def test_grades_csv_keeps_one_row_per_hostile_id_and_no_formula(tmp_path):
    write_gradebook([results(key) for key in HOSTILE_IDS], tmp_path / "grades.csv")
    rows = read_rows(tmp_path / "grades.csv")
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == 1 + len(HOSTILE_IDS)
    assert all(len(row) == len(CSV_FIELDS) for row in rows)
    assert [exports.unescape_id(row[0]) for row in rows[1:]] == HOSTILE_IDS
    assert_no_formula_cell(rows)
    # A spreadsheet splits rows at any bare line break outside quotes: none is left unquoted.
    text = (tmp_path / "grades.csv").read_bytes().decode("utf-8")
    outside_quotes = text.split('"')[::2]
    assert all(part.replace("\r\n", "").count("\r") == 0 and part.replace("\r\n", "").count("\n") == 0
               for part in outside_quotes)


def roster_of(values):
    """Return a roster whose every student carries one hostile value in every column."""
    roster = {}
    for number, value in enumerate(values):
        roster[f"s{number}"] = [Student(name=value, email=f"s{number}@example.edu", sis_id=f"{number:04d}",
                                        section=value)]
    return roster


def test_lms_imports_escape_display_cells_and_keep_one_row_per_student(tmp_path):
    roster = roster_of(HOSTILE_TEXT)
    rows = [{"id": key, "score": "90", "max_score": "100", "status": "graded", "message": ""} for key in roster]
    canvas, moodle = tmp_path / "canvas.csv", tmp_path / "moodle.csv"
    assert exports.write_canvas_csv(rows, roster, canvas, points_possible=100) == {}
    assert exports.write_moodle_csv(rows, roster, moodle) == {}
    for path, header_rows in ((canvas, 2), (moodle, 1)):
        table = read_rows(path)
        assert len(table) == header_rows + len(HOSTILE_TEXT)
        assert len({len(row) for row in table}) == 1
        assert_no_formula_cell(table)
    names = [row[0] for row in read_rows(canvas)[2:]]
    assert [name.removeprefix("'") if name[1:].startswith(FORMULA_START) else name for name in names] == HOSTILE_TEXT


@pytest.mark.parametrize("column, student", [
    ("SIS User ID", Student(name="Eve", email="eve@example.edu", sis_id="=1+1")),
    ("SIS Login ID", Student(name="Eve", email="@SUM(1)x@example.com")),
    ("ID", Student(name="Eve", email="eve@example.edu", canvas_id="-2+3")),
])
def test_canvas_refuses_a_formula_in_a_column_it_matches_on(tmp_path, column, student):
    roster = {"eve": [student], "ok": [Student(name="Ok", email="ok@example.edu")]}
    rows = [{"id": key, "score": "90", "max_score": "100", "status": "graded"} for key in roster]
    left = exports.write_canvas_csv(rows, roster, tmp_path / "canvas.csv")
    assert list(left) == ["eve"] and f"has the {column}" in left["eve"] and "formula" in left["eve"]
    table = read_rows(tmp_path / "canvas.csv")
    assert [row[0] for row in table[1:]] == ["Ok"]
    assert_no_formula_cell(table)


def test_moodle_refuses_a_formula_in_a_column_it_matches_on(tmp_path):
    roster = {"eve": [Student(name="Eve", email="=HYPERLINK(1)@x.edu")], "ok": [Student(email="ok@example.edu")]}
    rows = [{"id": key, "score": "90", "max_score": "100", "status": "graded"} for key in roster]
    left = exports.write_moodle_csv(rows, roster, tmp_path / "moodle.csv")
    assert list(left) == ["eve"] and "has the Email address" in left["eve"]
    assert [row[0] for row in read_rows(tmp_path / "moodle.csv")[1:]] == ["ok@example.edu"]


def test_a_student_folder_never_takes_a_class_file_s_place_or_leaves_reports(tmp_path):
    reports = tmp_path / "reports"
    folders = [report_folder(reports, key) for key in HOSTILE_IDS]
    assert len(set(folders)) == len(HOSTILE_IDS)                       # two ids never share a folder
    assert all(folder.parent == reports for folder in folders)         # "..", "x/y" stay inside
    assert not {folder.name.casefold() for folder in folders} & {"summary.html", "summary.md", ".", ".."}
    assert folder_name("alice") == "alice" and folder_name("john.doe") == "john.doe"  # plain ids keep their name


def test_the_class_summary_and_every_report_format_hold_hostile_names(tmp_path):
    class_results = [results(key, score=number % 2) for number, key in enumerate(HOSTILE_IDS)]
    names = {key: HOSTILE_TEXT[number % len(HOSTILE_TEXT)] for number, key in enumerate(HOSTILE_IDS)}
    summary = summarise(class_results, names=names)
    page, markdown = to_html(summary), to_markdown(summary)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert all(line.count("|") - line.count("\\|") in (0,) or line.startswith("|") for line in markdown.splitlines())
    for fmt in FORMATS:
        text = render(results("=1+1\r\n<b>x</b>"), fmt)
        if fmt == "json":
            assert json.loads(text)["extra_data"]["submission"] == "=1+1\r\n<b>x</b>"
        if fmt == "junit":
            ET.fromstring(text)
        if fmt == "html":
            assert "<b>x</b>" not in text
    write_summary(class_results, tmp_path)
    assert (tmp_path / "summary.html").is_file() and (tmp_path / "summary.md").is_file()


def test_an_lms_import_without_a_roster_is_refused_before_grading(tmp_path, capsys):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "bob.py").write_text("")
    code = batch_command.main(folder=str(tmp_path / "class"), output=str(tmp_path / "grades.csv"),
                              canvas=str(tmp_path / "canvas.csv"))
    err = capsys.readouterr().err
    assert code == batch_command.USAGE_ERROR and "--roster" in err and "--allow-partial" in err
    assert not (tmp_path / "grades.csv").exists() and not (tmp_path / "canvas.csv").exists()


def test_an_lms_import_that_would_leave_a_student_out_names_them(tmp_path, capsys):
    (tmp_path / "class").mkdir()
    for name in ("bob.py", "zoe.py"):
        (tmp_path / "class" / name).write_text("")
    (tmp_path / "roster.csv").write_text("id,name,email\nbob,Bob,bob@example.edu\n", encoding="utf-8")
    code = batch_command.main(folder=str(tmp_path / "class"), output=str(tmp_path / "grades.csv"),
                              roster=str(tmp_path / "roster.csv"), moodle=str(tmp_path / "moodle.csv"))
    err = capsys.readouterr().err
    assert code == batch_command.USAGE_ERROR and "leave out 1 of 2" in err and "zoe is not in the roster" in err


def test_a_class_file_inside_reports_named_like_a_student_is_refused(tmp_path, capsys):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "grades.csv.py").write_text("")
    reports = tmp_path / "reports"
    code = batch_command.main(folder=str(tmp_path / "class"), output=str(reports / "grades.csv"), reports=str(reports))
    err = capsys.readouterr().err
    assert code == batch_command.USAGE_ERROR and "report folder of the submission 'grades.csv'" in err


@pytest.mark.slow
def test_a_hostile_class_is_graded_whole(tmp_path):
    from benchmarks.class_folder import make_class

    names = {"summary.html.py": "summary.html", "=1+1.py": "=1+1", "a\rb.py": "a\rb"}
    make_class(tmp_path / "class", ["bob.py"])
    for name in names:
        (tmp_path / "class" / name).write_bytes((tmp_path / "class" / "bob.py").read_bytes())
    (tmp_path / "class" / "bob.py").unlink()
    roster = io.StringIO()
    writer = csv.writer(roster)
    writer.writerow(["id", "name", "email", "sis_id", "section"])
    for number, key in enumerate(names.values()):
        writer.writerow([key, HOSTILE_TEXT[number], f"s{number}@example.edu", f"{number:04d}", "-2+3"])
    (tmp_path / "roster.csv").write_text(roster.getvalue(), encoding="utf-8")
    reports, gradebook = tmp_path / "reports", tmp_path / "grades.csv"
    done = run_python("-m", "grader", "batch", str(tmp_path / "class"), "--no-training", "--jobs", "1",
                      "--output", str(gradebook), "--reports", str(reports), "--roster", str(tmp_path / "roster.csv"),
                      "--canvas", str(tmp_path / "canvas.csv"), "--moodle", str(tmp_path / "moodle.csv"),
                      timeout=400)
    assert done.returncode == 0, done.stderr
    rows = read_rows(gradebook)
    assert sorted(exports.unescape_id(row[0]) for row in rows[1:]) == sorted(names.values())
    assert {row[CSV_FIELDS.index("status")] for row in rows[1:]} == {"graded"}
    assert (reports / "summary.html").is_file() and "3 submissions: 3 graded" in (reports / "summary.md").read_text()
    assert (reports / "summary%2Ehtml" / "report.json").is_file()
    for path in (gradebook, tmp_path / "canvas.csv", tmp_path / "moodle.csv"):
        table = read_rows(path)
        assert_no_formula_cell(table)
        assert len(table) == (2 if path.name == "canvas.csv" else 1) + len(names)


def test_gradescope_metadata_values_get_the_same_treatment(tmp_path):
    metadata = ("submission_1:\n  :submitters:\n  - :name: '=1+1'\n    :sid: '0042'\n    :email: ada@example.edu\n"
                "submission_2:\n  :submitters:\n  - :name: Eve\n    :sid: '-2+3'\n    :email: '@SUM(1)x@example.com'\n")
    roster = exports.parse_gradescope_metadata(metadata)
    rows = [{"id": key, "score": "90", "max_score": "100", "status": "graded"} for key in roster]
    left = exports.write_moodle_csv(rows, roster, tmp_path / "moodle.csv")
    assert list(left) == ["submission_2"] and "formula" in left["submission_2"]
    table = read_rows(tmp_path / "moodle.csv")
    assert len(table) == 2 and table[1][2] == "'=1+1"
    assert_no_formula_cell(table)
