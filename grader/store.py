"""The only reader and writer of report folders, report.json and the batch's files, every write atomic.

A report folder holds one submission's results in every format (report.txt, .json, .xml, .md, .html);
report.json is Gradescope's results.json, and from_json rebuilds GradingResults from it (the class summary
is rebuilt that way after re-grading a few students). The gradebook is written a row at a time as results
come in, then rewritten in submission order; the class summary once, after the batch.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from grader.render import FORMATS, SUFFIXES, render
from grader.render import summary as summary_render
from grader.render.gradebook import csv_row, csv_writer, write_csv
from grader.render.gradescope_json import BONUS_TAG
from grader.results import FAILED, GRADED, PASSED, VISIBLE, CheckResult, GradingResults
from grader.summary import summarise

# A student's report folder sits beside the class files in --reports. An id that names one of them (a submission
# called summary.html.py), starts with a dot (".." would climb out) or holds a character a file name should not
# is percent-encoded, "." included; no other id holds "%", so two ids never share a folder.
CLASS_FILES = frozenset(name.casefold() for name in (summary_render.HTML_NAME, summary_render.MARKDOWN_NAME))
_UNSAFE_IN_NAME = frozenset('%/\\:*?"<>|')
BAD_RESULTS_JSON = "Not a results.json written by the grader: {problem}. Received: {received}"
REPORT_JSON = "report.json"


def atomic_write(path, text):
    """Write text to path through a temporary file and a rename, so no reader ever sees half a report."""
    path = Path(path)
    if path.exists() and not path.is_file():  # /dev/null, a pipe: a rename would replace the device with a file
        with open(path, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        return
    handle, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def folder_name(submission_id: str) -> str:
    """Return the name of a submission's report folder: its id, percent-encoded where it could clash or escape."""
    plain = (not submission_id.startswith(".") and submission_id.casefold() not in CLASS_FILES
             and not any(char in _UNSAFE_IN_NAME or not char.isprintable() for char in submission_id))
    if not submission_id:
        return "%"  # no id is empty (a file name has a character); "%" alone is no other id's folder either
    return submission_id if plain else quote(submission_id, safe="").replace(".", "%2E")


def report_folder(reports, submission_id: str) -> Path:
    """Return the report folder of a submission inside a batch's --reports folder."""
    return Path(reports) / folder_name(submission_id)


def write_reports(results, folder):
    """Write the results in every format into folder; return the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = folder / f"report{SUFFIXES[fmt]}"
        atomic_write(path, render(results, fmt))
        paths.append(path)
    return paths


def from_json(text):
    """Rebuild a GradingResults from the text grader.render.gradescope_json.to_json() wrote."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(BAD_RESULTS_JSON.format(problem=f"invalid JSON ({error})", received=clip(text))) from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise ValueError(BAD_RESULTS_JSON.format(problem='expected an object with a "tests" list',
                                                 received=clip(text)))
    extra = data.get("extra_data") or {}
    tests = []
    for entry in data["tests"]:
        tags = entry.get("tags") or [""]
        score = float(entry.get("score", 0))
        max_score = float(entry.get("max_score", 0))
        status = entry.get("status") or (PASSED if score >= max_score else FAILED)
        seconds = (entry.get("extra_data") or {}).get("seconds")
        tests.append(CheckResult(name=entry.get("name", ""), part=tags[0], score=score, max_score=max_score,
                                 status=status, output=entry.get("output", ""),
                                 visibility=entry.get("visibility", VISIBLE),
                                 seconds=None if seconds is None else float(seconds),
                                 bonus=BONUS_TAG in tags[1:]))
    return GradingResults(submission=extra.get("submission", ""), tests=tests,
                          execution_time=float(data.get("execution_time", 0.0)),
                          probe_output=extra.get("probe_output", ""), notes=list(extra.get("notes", [])),
                          sandbox=list(extra.get("sandbox", [])),
                          artifacts=dict(extra.get("artifacts", {})), status=extra.get("status", GRADED))


def load_results(reports_folder, name: str = REPORT_JSON) -> list:
    """Return the GradingResults of every REPORTS/<id>/report.json a batch wrote, sorted by folder name."""
    found = []
    for path in sorted(Path(reports_folder).glob(f"*/{name}")):
        found.append(from_json(path.read_text(encoding="utf-8")))
    return found


def write_summary(results_list: list, folder, *, names: dict | None = None) -> tuple:
    """Write summary.html and summary.md for a batch into folder; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise(results_list, names=names)
    html_path, markdown_path = folder / summary_render.HTML_NAME, folder / summary_render.MARKDOWN_NAME
    atomic_write(html_path, summary_render.to_html(summary))
    atomic_write(markdown_path, summary_render.to_markdown(summary))
    return html_path, markdown_path


def write_gradebook(results_list, path):
    """Write the gradebook CSV of results_list to path, atomically."""
    import io

    buffer = io.StringIO()
    write_csv(results_list, buffer)
    atomic_write(path, buffer.getvalue())


class Gradebook:
    """The gradebook CSV, one row appended as each result comes in, so nothing graded is lost."""

    def __init__(self, path):
        self.path = Path(path) if path else None
        self.stream = None
        if self.path:
            self.stream = open(self.path, "w", newline="", encoding="utf-8")
            self.writer = csv_writer(self.stream)
            self.writer.writeheader()
            self.stream.flush()

    def add(self, results):
        """Append one submission's row and flush it to disk."""
        if self.stream:
            self.writer.writerow(csv_row(results))
            self.stream.flush()

    def close(self, results_list):
        """Rewrite the gradebook in submission order, atomically."""
        if not self.stream:
            return
        self.stream.close()
        write_gradebook(results_list, self.path)


def clip(text, limit=80):
    """Return the start of text for an error message."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")
