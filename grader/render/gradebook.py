"""The gradebook: one CSV row per submission, one column per part, for an instructor's spreadsheet."""

import csv

from grader.lesson.manifest import PARTS
from grader.render.common import number
from grader.render.escape import spreadsheet_safe

# Batch gradebook columns: one per part, so an instructor can sort by the part a class struggled with.
CSV_FIELDS = ("id", "score", "max_score", "bonus") + PARTS + ("status", "seconds", "message")
CSV_MESSAGE_CHARS = 200  # the gradebook's message column: the first note, cut to fit a spreadsheet cell
# RFC 4180's line end, the csv module's default. The module quotes a field holding the delimiter, the quote or any
# character of the line terminator: with "\r\n" a carriage return or a line feed inside a value is quoted, so no value
# can split a row (with "\n" alone, a bare "\r" was written unquoted and a spreadsheet broke the row in two).
LINE_END = "\r\n"


def csv_row(results):
    """Return a submission's gradebook row, keyed by CSV_FIELDS (blank for parts with no tests)."""
    row = {"id": spreadsheet_safe(results.submission), "score": number(results.score),
           "max_score": number(results.max_score), "bonus": number(results.bonus_score)}
    scores = results.part_scores()
    present = {test.part for test in results.tests}
    for part in PARTS:
        row[part] = number(scores[part][0]) if part in present else ""
    row["status"] = results.status
    row["seconds"] = number(round(results.execution_time, 1))
    row["message"] = spreadsheet_safe(" ".join(results.notes[0].split())[:CSV_MESSAGE_CHARS]) if results.notes else ""
    return row


def csv_writer(stream, fieldnames=CSV_FIELDS):
    """Return the kit's one CSV writer (dict rows) on an open text stream, its header not yet written."""
    return csv.DictWriter(stream, fieldnames=fieldnames, lineterminator=LINE_END)


def write_csv(results_list, stream):
    """Write one gradebook row per GradingResults, with a CSV_FIELDS header, to an open text stream."""
    writer = csv_writer(stream)
    writer.writeheader()
    for results in results_list:
        writer.writerow(csv_row(results))
