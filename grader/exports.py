"""From submission ids to students, and from the gradebook to the learning-management systems.

- Submission ids are file names without the extension the grader reads (`bob.ipynb` -> `bob`), unless two
  submissions would then share an id.
- A roster CSV maps submission ids to students (`id,name,email,sis_id,...`; several rows for a group).
- A Gradescope "Download Submissions" export (a folder of `submission_<n>/` folders and
  `submission_metadata.yml`) is read for its submitters; the metadata file is never a submission.
- Writers: Canvas's gradebook import CSV and Moodle's grade import CSV, from gradebook rows.
- `merge_gradebook` puts re-graded students into an existing grades.csv (`grader batch --only ID ...`).

Gradebook rows are the dicts `grader.render.gradebook.csv_row()` returns, or the rows `read_gradebook` reads back.
"""

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from grader import extra_credit
from grader.render.escape import FORMULA_START, spreadsheet_safe
from grader.render.gradebook import CSV_FIELDS, csv_row, csv_writer

SUBMISSION_SUFFIXES = (".py", ".ipynb", ".zip")
GRADESCOPE_METADATA = "submission_metadata.yml"
ASSIGNMENT = "Lesson 6"

# Canvas's gradebook export/import: these five identify the student (Canvas matches on ID, SIS User ID or
# SIS Login ID), then one column per assignment, "Name (Canvas assignment id)"; a name without an id makes a
# new assignment. The row under the header gives the points possible, as in Canvas's own export.
CANVAS_FIELDS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"
# Canvas takes a score above points possible as extra credit: its column holds the total, bonus included.
# Moodle's "Import grades: CSV file": any header, mapped in the import form. "Identify user by" maps one
# column (email address, username or ID number) to a user field; one column maps to the grade item, another
# optionally to its feedback. A grade above its item's maximum is refused, so the bonus has a column of its own.
MOODLE_FIELDS = ("Email address", "ID number", "Full name")
MOODLE_FEEDBACK = "Feedback"

ROSTER_COLUMNS = ("id", "name", "email", "sis_id", "canvas_id", "sis_login_id", "section")
BAD_ROSTER = ("Invalid roster {path}: {problem}. Expected a CSV with a header naming an `id` column (the "
              "submission id) and any of {columns}. Received: {received}")
BAD_GRADEBOOK = ("Cannot merge into {path}: {problem}. Expected a gradebook written by `grader batch`, with "
                 "the columns {columns}. Received: {received}")
CANVAS, MOODLE = "Canvas", "Moodle"
FORMULA_IN_MATCH_COLUMN = ("{who} ({id}) has the {column} {value!r}, which a spreadsheet would run as a formula; "
                           "{lms} matches students on that column, so the grader neither alters it nor writes the row. "
                           "Expected a roster value that does not start with =, +, -, @, a tab or a line break")
UNKNOWN_IDS = "No submission with the id {unknown} in {folder}. Expected one of: {known}"


@dataclass(frozen=True)
class Student:
    """One student as the roster or the LMS knows them; blank where unknown."""

    name: str = ""
    email: str = ""
    sis_id: str = ""           # the institution's student number (Canvas "SIS User ID", Moodle "ID number")
    canvas_id: str = ""        # Canvas's own numeric user id (its "ID" column)
    sis_login_id: str = ""
    section: str = ""


# --- submission ids ---------------------------------------------------------------------------------------


def strip_extension(name: str) -> str:
    """Return a submission's file name without the extension the grader reads: bob.ipynb -> bob."""
    for suffix in SUBMISSION_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def submission_ids(paths) -> dict:
    """Return {path: id} for a batch: names without extensions, kept whole where two would share an id."""
    paths = [Path(path) for path in paths]
    stems = [strip_extension(path.name) for path in paths]
    return {path: stem if stems.count(stem) == 1 else path.name for path, stem in zip(paths, stems)}


def select_submissions(paths, only, folder="the folder") -> list:
    """Return the paths whose id (with or without extension) is in only; raise ValueError naming unknown ids."""
    ids = submission_ids(paths)
    wanted = set(only)
    chosen = [path for path, key in ids.items() if key in wanted or path.name in wanted]
    found = {ids[path] for path in chosen} | {path.name for path in chosen}
    unknown = sorted(wanted - found)
    if unknown:
        raise ValueError(UNKNOWN_IDS.format(unknown=", ".join(unknown), folder=folder,
                                            known=", ".join(sorted(ids.values()))))
    return chosen


# --- rosters ----------------------------------------------------------------------------------------------


def read_roster(path) -> dict:
    """Return {submission id: [Student, ...]} from a roster CSV (one row per student; a group repeats its id)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: Excel writes a byte-order mark
        reader = csv.DictReader(handle)
        header = [(name or "").strip().lower().replace(" ", "_") for name in reader.fieldnames or []]
        unknown = [name for name in header if name not in ROSTER_COLUMNS]
        if "id" not in header or unknown:
            problem = f"unknown columns {unknown}" if unknown else "no `id` column"
            raise ValueError(BAD_ROSTER.format(path=path, problem=problem, columns=", ".join(ROSTER_COLUMNS[1:]),
                                               received=f"header {reader.fieldnames}"))
        roster: dict[str, list[Student]] = {}
        for number, raw in enumerate(reader, start=2):
            row = {key: (value or "").strip() for key, value in zip(header, raw.values())}
            if not row["id"]:
                raise ValueError(BAD_ROSTER.format(path=path, problem=f"line {number} has no id",
                                                   columns=", ".join(ROSTER_COLUMNS[1:]), received=dict(raw)))
            student = Student(**{key: row.get(key, "") for key in ROSTER_COLUMNS[1:]})
            roster.setdefault(strip_extension(row["id"]), []).append(student)
    return roster


def roster_names(roster: dict) -> dict:
    """Return {submission id: "Name, Name"} for the summary page."""
    return {key: ", ".join(s.name or s.email or key for s in students) for key, students in roster.items()}


# --- Gradescope's "Download Submissions" export -----------------------------------------------------------


def gradescope_roster(folder) -> dict | None:
    """Return {submission folder name: [Student, ...]} of a Gradescope export folder, or None if it is not one."""
    path = Path(folder) / GRADESCOPE_METADATA
    if not path.is_file():
        return None
    return parse_gradescope_metadata(path.read_text(encoding="utf-8"))


def parse_gradescope_metadata(text: str) -> dict:
    """Return the submitters of each submission in a submission_metadata.yml (Ruby-style YAML, symbol keys).

    Only what the roster needs is read: top-level `submission_<n>:` keys and each one's `:submitters:` list
    of `:name:`, `:email:`, `:sid:`. Everything else (scores, results, dates) is skipped by indentation.
    """
    submitters: dict[str, list[dict[str, str]]] = {}
    current = ""
    block_indent: int | None = None
    item: dict[str, str] | None = None
    item_indent: int | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped == "---":
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            current = _unquote(stripped.rstrip(":").strip())
            submitters[current] = []
            block_indent = item = None
            continue
        if stripped == ":submitters:":
            block_indent, item = indent, None
            continue
        if block_indent is None:
            continue
        if stripped.startswith("- ") and indent >= block_indent:
            item, item_indent = {}, indent + 2
            submitters[current].append(item)
            _read_pair(stripped[2:], item)
        elif item is not None and indent == item_indent:
            _read_pair(stripped, item)
        elif indent <= block_indent:
            block_indent = item = None
    return {key: [Student(name=entry.get("name", ""), email=entry.get("email", ""), sis_id=entry.get("sid", ""))
                  for entry in entries] for key, entries in submitters.items()}


def _read_pair(text, into):
    """Store a `:key: value` line into a dict (nested values are skipped)."""
    key, _, value = text.partition(": ")
    key = key.strip().lstrip(":").rstrip(":")
    if value.strip():
        into[key] = _unquote(value.strip())


def _unquote(value):
    """Return a YAML scalar's text: 'single' or "double" quotes removed."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value[1:-1]
    return value


# --- gradebooks -------------------------------------------------------------------------------------------


def read_gradebook(path) -> list:
    """Return the rows of a grades.csv written by `grader batch`, as dicts keyed by its header."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != CSV_FIELDS:
            raise ValueError(BAD_GRADEBOOK.format(path=path, problem="its header is not the gradebook's",
                                                  columns=", ".join(CSV_FIELDS), received=reader.fieldnames))
        return list(reader)


def merge_gradebook(existing_csv, new_results, output=None) -> list:
    """Replace the rows of re-graded submissions in a grades.csv (append new ones); write and return all rows."""
    rows = read_gradebook(existing_csv) if Path(existing_csv).exists() else []
    fresh = {results.submission: csv_row(results) for results in new_results}
    merged = []
    for row in rows:
        key = row["id"] if row["id"] in fresh else strip_extension(row["id"])
        merged.append(fresh.pop(key, row))
    merged.extend(fresh.values())
    write_rows(merged, output or existing_csv, CSV_FIELDS)
    return merged


def write_rows(rows, path_or_file, fieldnames, extra_rows=()):
    """Write dict rows under a header (after any extra plain rows) to a path, atomically, or to an open file."""
    if isinstance(path_or_file, (str, os.PathLike)):
        from grader.store import atomic_write

        buffer = io.StringIO()
        write_rows(rows, buffer, fieldnames, extra_rows)
        return atomic_write(path_or_file, buffer.getvalue())
    writer = csv_writer(path_or_file, fieldnames)
    writer.writeheader()
    for extra in extra_rows:
        writer.writerow(extra)
    writer.writerows(rows)


def _students_of(row, roster):
    """Return the roster's students for a gradebook row, or None when the roster does not know its id."""
    key = unescape_id(str(row["id"]))
    return roster.get(key) or roster.get(strip_extension(key))


def unescape_id(value: str) -> str:
    """Return a gradebook id as the submission named it: the quote spreadsheet_safe put before a formula removed."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def _grade(row):
    """Return a row's score for an LMS: blank (no change) when grading could not finish."""
    return "" if row.get("status") == "error" else str(row["score"])


def formula_like(value) -> bool:
    """Return whether a spreadsheet would run a cell holding value as a formula."""
    return str(value).startswith(FORMULA_START)


def match_values(student: Student, lms: str) -> dict:
    """Return the columns an LMS matches this student on, with their values ({column: value})."""
    if lms == CANVAS:
        return {"ID": student.canvas_id, "SIS User ID": student.sis_id,
                "SIS Login ID": student.sis_login_id or student.email}
    return {"Email address": student.email, "ID number": student.sis_id}


def left_out(submission_id: str, students, lms: str) -> str | None:
    """Return why a submission cannot go into an LMS import (one sentence), or None when all its students can."""
    if not students:
        return f"{submission_id} is not in the roster"
    if lms == MOODLE and not any(student.email or student.sis_id for student in students):
        return f"the roster has no email or sis_id for {submission_id}"
    for student in students:
        for column, value in match_values(student, lms).items():
            if formula_like(value):
                who = student.name or student.email or "a student"
                return FORMULA_IN_MATCH_COLUMN.format(id=submission_id, who=who, column=column, value=value, lms=lms)
    return None


def export_problems(submission_ids, roster: dict, lms: str) -> dict:
    """Return {submission id: why it cannot go into the LMS import} for the ids an import would leave out."""
    problems = {}
    for key in submission_ids:
        reason = left_out(key, _students_of({"id": key}, roster), lms)
        if reason:
            problems[key] = reason
    return problems


# --- Canvas -----------------------------------------------------------------------------------------------


def canvas_column(assignment: str = ASSIGNMENT, assignment_id: str | None = None) -> str:
    """Return Canvas's assignment column header: "Lesson 6 (1234)", or the bare name for a new assignment."""
    return f"{assignment} ({assignment_id})" if assignment_id else assignment


def write_canvas_csv(rows, roster: dict, path, *, assignment: str = ASSIGNMENT, assignment_id: str | None = None,
                     points_possible: float | None = None) -> dict:
    """Write Canvas's gradebook import CSV (one line per student); return {id: why} for the rows left out."""
    column = canvas_column(assignment, assignment_id)
    out, left = [], {}
    for row in rows:
        students = _students_of(row, roster)
        reason = left_out(unescape_id(str(row["id"])), students, CANVAS)
        if reason:
            left[row["id"]] = reason
            continue
        for student in students:
            out.append({"Student": spreadsheet_safe(student.name), **match_values(student, CANVAS),
                        "Section": spreadsheet_safe(student.section), column: _grade(row)})
    extra = []
    if points_possible is not None:
        extra = [{"Student": CANVAS_POINTS_ROW, column: f"{points_possible:g}"}]
    write_rows(out, path, (*CANVAS_FIELDS, column), extra)
    return left


# --- Moodle -----------------------------------------------------------------------------------------------


def moodle_bonus_item(grade_item: str = ASSIGNMENT) -> str:
    """Return the header of the bonus column, for the second grade item the import form maps it to."""
    return f"{grade_item} bonus"


def write_moodle_csv(rows, roster: dict, path, *, grade_item: str = ASSIGNMENT) -> dict:
    """Write Moodle's grade import CSV (identify users by email address or ID number); return {id: why} left out.

    Moodle refuses a grade above the grade item's maximum, so the lesson's points and the bonus get a column each
    (see grader.extra_credit).
    """
    bonus_item = moodle_bonus_item(grade_item)
    fieldnames = (*MOODLE_FIELDS, grade_item, bonus_item, MOODLE_FEEDBACK)
    out, left = [], {}
    for row in rows:
        students = _students_of(row, roster)
        reason = left_out(unescape_id(str(row["id"])), students, MOODLE)
        if reason:
            left[row["id"]] = reason
            continue
        graded = bool(_grade(row))
        bonus = row.get("bonus") or 0
        lesson = str(extra_credit.lesson_points(row["score"], bonus)) if graded else ""
        feedback = (extra_credit.score_text(row["score"], row["max_score"], bonus) if graded
                    else str(row.get("message", "")))
        for student in students:
            out.append({**match_values(student, MOODLE), "Full name": spreadsheet_safe(student.name),
                        grade_item: lesson, bonus_item: str(extra_credit.number(bonus)) if graded else "",
                        MOODLE_FEEDBACK: spreadsheet_safe(feedback)})
    write_rows(out, path, fieldnames)
    return left
