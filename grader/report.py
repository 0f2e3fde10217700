"""One results object per graded submission, with one renderer per output format.

Grading logic fills a GradingResults; it never formats output. Each `to_*` method renders the same
tests, in the same order, for one audience: the terminal, Gradescope (JSON), CI (JUnit XML, Markdown),
and the gradebook (CSV rows).
"""

import base64
import contextlib
import csv
import html
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from grader.lesson.manifest import PARTS

PASSED = "passed"
FAILED = "failed"

TITLE = "Lesson 6 — CNNs in Keras"
SUITE = "lesson6"                      # JUnit testsuite name and classname prefix
FORMATS = ("text", "json", "junit", "markdown")
SUFFIXES = {"text": ".txt", "json": ".json", "junit": ".xml", "markdown": ".md"}
UNKNOWN_FORMAT = "Unknown report format: expected one of {expected}. Received: format={received!r}"
BAD_RESULTS_JSON = "Not a results.json written by GradingResults.to_json(): {problem}. Received: {received}"

# Batch gradebook columns: one per part, so an instructor can sort by the part a class struggled with.
CSV_FIELDS = ("id", "score", "max_score", "bonus") + PARTS + ("status", "seconds", "message")
BONUS_TAG = "bonus"  # the second tag of a bonus test in results.json: its points come on top of max_score
CSV_MESSAGE_CHARS = 200  # the gradebook's message column: the first note, cut to fit a spreadsheet cell

PRINTED_HEADING = "What your code printed"
GRADING_UNFINISHED = "Grading could not finish; the score counts only the tests that ran"

# Gradescope results.json: tests are shown to students; what the grader process itself printed is not.
GRADESCOPE_VISIBILITY = "visible"
GRADESCOPE_STDOUT_VISIBILITY = "hidden"

# XML 1.0 forbids most control characters (TensorFlow logs carry ANSI escapes); ElementTree would
# write them unescaped and produce a file no JUnit reader accepts.
_XML_ILLEGAL = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Student output reaches the instructor's terminal; escapes could recolour, erase or forge report lines.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Leading characters that make a spreadsheet treat a cell as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class CheckResult:
    """One hidden test's verdict (named so pytest does not collect it)."""

    name: str                 # e.g. "build_cnn: output shape after every stage"
    part: str                 # one of PARTS; rendered as the test's tags
    score: float
    max_score: float
    status: str               # PASSED or FAILED
    output: str = ""          # what the student reads: empty when passed, the mistake in words when failed
    visibility: str = "visible"
    bonus: bool = False       # extra credit: its points count in score, never in max_score


@dataclass
class GradingResults:
    """Everything the grader concluded about one submission."""

    submission: str                                  # the submission's id (file or folder name)
    tests: list = field(default_factory=list)        # CheckResult, in grading order
    execution_time: float = 0.0                      # seconds, whole grading
    probe_output: str = ""                           # what the student's code printed, truncated
    notes: list = field(default_factory=list)        # plain-words facts for the instructor
    artifacts: dict = field(default_factory=dict)    # name -> path of files in the report folder
    status: str = "graded"                           # "graded", or "error" if grading itself failed

    @property
    def score(self):
        """Return the points earned, bonus included (so it may exceed max_score)."""
        return sum(test.score for test in self.tests)

    @property
    def max_score(self):
        """Return the points of the lesson's tasks: the bonus comes on top."""
        return sum(test.max_score for test in self.tests if not test.bonus)

    @property
    def bonus_score(self):
        """Return the bonus points earned."""
        return sum(test.score for test in self.tests if test.bonus)

    @property
    def bonus_max_score(self):
        """Return the bonus points on offer."""
        return sum(test.max_score for test in self.tests if test.bonus)

    def part_scores(self):
        """Return {part: (score, max_score)} for every part in PARTS."""
        totals = {part: [0.0, 0.0] for part in PARTS}
        for test in self.tests:
            totals[test.part][0] += test.score
            totals[test.part][1] += test.max_score
        return {part: tuple(values) for part, values in totals.items()}

    # ---- helpers shared by the renderers -------------------------------------------------------

    def passed_count(self):
        """Return how many tests passed."""
        return sum(test.status == PASSED for test in self.tests)

    def graded_parts(self):
        """Return {part: (score, max_score)} for the parts that have at least one test, in PARTS order."""
        present = {test.part for test in self.tests}
        return {part: totals for part, totals in self.part_scores().items() if part in present}

    def summary(self):
        """Return the one-line verdict every format leads with."""
        line = (f"Score: {_points(self.score)} / {_points(self.max_score)}{self._bonus_note()} "
                f"({self.passed_count()} of {len(self.tests)} tests passed)")
        if self.status != "graded":
            line += f". {GRADING_UNFINISHED}"
        return line

    def _bonus_note(self):
        """Return ', including 5 of 5 bonus points' when the results have bonus tests, else ''."""
        if not self.bonus_max_score:
            return ""
        return f", including {_points(self.bonus_score)} of {_points(self.bonus_max_score)} bonus points"

    # ---- terminal ---------------------------------------------------------------------------

    def to_text(self):
        """Render the terminal report: tests, part subtotals, notes, then what the code printed."""
        lines = [f"{TITLE}: {_terminal_safe(self.submission)}",
                 f"Score: {_points(self.score)} / {_points(self.max_score)}{self._bonus_note()}"]
        if self.status != "graded":
            lines.append(f"{GRADING_UNFINISHED}.")
        lines.append("")
        width = max((len(_fraction(t.score, t.max_score)) for t in self.tests), default=0)
        for test in self.tests:
            mark = "✓" if test.status == PASSED else "✗"
            points = _fraction(test.score, test.max_score).rjust(width)
            lines.append(f"{mark} {points}  {_terminal_safe(test.name)}")
            if test.status != PASSED and test.output:
                lines.extend(_indent(_terminal_safe(test.output), "      "))
        parts = self.graded_parts()
        if parts:
            lines += ["", "By part:"]
            name_width = max(len(part) for part in parts)
            for part, (score, max_score) in parts.items():
                lines.append(f"  {part.ljust(name_width)}  {_points(score)} / {_points(max_score)}")
        if self.notes:
            lines += ["", "Notes:"]
            lines += [f"  - {_terminal_safe(str(note))}" for note in self.notes]
        if self.probe_output:
            # Prefixed so nothing the student printed can pass for a line of the report.
            lines += ["", f"{PRINTED_HEADING}:"]
            lines.extend(_indent(_terminal_safe(self.probe_output), "  | "))
        return "\n".join(lines) + "\n"

    # ---- Gradescope -------------------------------------------------------------------------

    def to_dict(self):
        """Return the Gradescope results.json object (what to_json serialises)."""
        return {
            "score": _number(self.score),
            "max_score": _number(self.max_score),
            "execution_time": _number(round(self.execution_time, 3)),
            "output": self.summary(),
            "visibility": GRADESCOPE_VISIBILITY,
            "stdout_visibility": GRADESCOPE_STDOUT_VISIBILITY,
            # Gradescope stores extra_data without showing it; from_json rebuilds the rest from it.
            "extra_data": {
                "submission": self.submission,
                "status": self.status,
                "notes": [str(note) for note in self.notes],
                "probe_output": self.probe_output,
                "artifacts": {str(k): str(v) for k, v in self.artifacts.items()},
            },
            "tests": [
                {
                    "name": test.name,
                    "score": _number(test.score),
                    "max_score": _number(test.max_score),
                    "status": PASSED if test.status == PASSED else FAILED,
                    "output": test.output,
                    "tags": [test.part] + [BONUS_TAG] * test.bonus,
                    "visibility": test.visibility,
                }
                for test in self.tests
            ],
        }

    def to_json(self, indent=2):
        """Render Gradescope's results.json."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text):
        """Rebuild a GradingResults from the text to_json() wrote."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(BAD_RESULTS_JSON.format(problem=f"invalid JSON ({error})",
                                                     received=_clip(text))) from None
        if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
            raise ValueError(BAD_RESULTS_JSON.format(problem='expected an object with a "tests" list',
                                                     received=_clip(text)))
        extra = data.get("extra_data") or {}
        tests = []
        for entry in data["tests"]:
            tags = entry.get("tags") or [""]
            score = float(entry.get("score", 0))
            max_score = float(entry.get("max_score", 0))
            status = entry.get("status") or (PASSED if score >= max_score else FAILED)
            tests.append(CheckResult(name=entry.get("name", ""), part=tags[0], score=score,
                                     max_score=max_score, status=status, output=entry.get("output", ""),
                                     visibility=entry.get("visibility", "visible"), bonus=BONUS_TAG in tags[1:]))
        return cls(submission=extra.get("submission", ""), tests=tests,
                   execution_time=float(data.get("execution_time", 0.0)),
                   probe_output=extra.get("probe_output", ""), notes=list(extra.get("notes", [])),
                   artifacts=dict(extra.get("artifacts", {})), status=extra.get("status", "graded"))

    # ---- CI ---------------------------------------------------------------------------------

    def to_junit(self):
        """Render JUnit XML: one testsuite, one testcase per test in the JSON report's order."""
        failures = len(self.tests) - self.passed_count()
        suite = ET.Element("testsuite", name=SUITE, tests=str(len(self.tests)), failures=str(failures),
                           errors="0", skipped="0", time=f"{self.execution_time:.3f}")
        properties = ET.SubElement(suite, "properties")
        for name, value in (("submission", self.submission), ("score", _points(self.score)),
                            ("max_score", _points(self.max_score)), ("status", self.status)):
            ET.SubElement(properties, "property", name=name, value=_xml_safe(value))
        for note in self.notes:
            ET.SubElement(properties, "property", name="note", value=_xml_safe(str(note)))
        for test in self.tests:
            # CheckResult carries no per-test duration; the suite's time is the whole grading.
            case = ET.SubElement(suite, "testcase", classname=f"{SUITE}.{test.part}",
                                 name=_xml_safe(test.name), time="0")
            case_properties = ET.SubElement(case, "properties")
            ET.SubElement(case_properties, "property", name="score", value=_points(test.score))
            ET.SubElement(case_properties, "property", name="max_score", value=_points(test.max_score))
            if test.status != PASSED:
                output = test.output or "failed"
                failure = ET.SubElement(case, "failure", type="failed",
                                        message=_xml_safe(output.strip().splitlines()[0] if output.strip()
                                                          else "failed"))
                failure.text = _xml_safe(output)
        if self.probe_output:
            ET.SubElement(suite, "system-out").text = _xml_safe(self.probe_output)
        ET.indent(suite)
        return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    def to_markdown(self):
        """Render the CI step summary / PR comment: score, part table, test table, failure details."""
        lines = [f"## {TITLE}: {_points(self.score)} / {_points(self.max_score)}", "",
                 f"Submission {_md_inline(self.submission)}: {self.passed_count()} of {len(self.tests)} "
                 f"tests passed."]
        if self.status != "graded":
            lines += ["", f"> **{GRADING_UNFINISHED}.**"]
        parts = self.graded_parts()
        if parts:
            lines += ["", "| Part | Score | Max |", "| --- | ---: | ---: |"]
            lines += [f"| `{part}` | {_points(score)} | {_points(max_score)} |"
                      for part, (score, max_score) in parts.items()]
            lines.append(f"| **Total** | **{_points(self.score)}** | **{_points(self.max_score)}** |")
        if self.tests:
            lines += ["", "| | Test | Points |", "| :---: | --- | ---: |"]
            lines += [f"| {'✅' if test.status == PASSED else '❌'} | {_md_inline(test.name)} | "
                      f"{_fraction(test.score, test.max_score)} |" for test in self.tests]
        failed = [test for test in self.tests if test.status != PASSED]
        if failed:
            lines += ["", "### What to fix"]
            for test in failed:
                # An HTML block: GitHub does not read Markdown inside it, so escape for HTML only.
                lines += ["", f"<details><summary>❌ {_html_inline(test.name)} "
                              f"({_fraction(test.score, test.max_score)})</summary>", ""]
                lines += _fenced(_terminal_safe(test.output or "(no message)"))
                lines += ["", "</details>"]
        if self.notes:
            lines += ["", "### Notes", ""]
            lines += [f"- {_md_inline(str(note))}" for note in self.notes]
        if self.probe_output:
            lines += ["", f"<details><summary>{PRINTED_HEADING}</summary>", ""]
            lines += _fenced(_terminal_safe(self.probe_output))
            lines += ["", "</details>"]
        return "\n".join(lines) + "\n"

    def to_github_classroom(self, encoded=False):
        """Return the result GitHub Classroom's autograding-grading-reporter reads (base64 if encoded).

        The reporter decodes the runner's `result` output from base64 and reads: top-level `status`
        ("pass" / "fail" / "error"; anything but "pass" fails the job) and `max_score`; per test `name`,
        `status` and `message` (printed for failures) and `score` (summed into the points sent to
        Classroom). `version`, `max_score` per test and `tags` follow the classroom Python grader and are
        ignored by the reporter. Note that the reporter's own summary table counts passed tests, not
        points, so partial credit shows there as 0; the points sent to Classroom are right.
        """
        if self.status != "graded":
            status = "error"
        else:
            status = "pass" if all(test.status == PASSED for test in self.tests if not test.bonus) else "fail"
        result = {
            "version": 1,
            "status": status,
            "message": self.summary(),
            "max_score": _number(self.max_score),
            "tests": [
                {
                    "name": test.name,
                    "status": "pass" if test.status == PASSED else "fail",
                    "score": _number(test.score),
                    "max_score": _number(test.max_score),
                    "message": test.output or None,
                    "tags": [test.part] + [BONUS_TAG] * test.bonus,
                }
                for test in self.tests
            ],
        }
        if encoded:
            return base64.b64encode(json.dumps(result, ensure_ascii=False).encode("utf-8")).decode("ascii")
        return result

    # ---- gradebook --------------------------------------------------------------------------

    def csv_row(self):
        """Return this submission's gradebook row, keyed by CSV_FIELDS (blank for parts with no tests)."""
        row = {"id": _spreadsheet_safe(self.submission), "score": _number(self.score),
               "max_score": _number(self.max_score), "bonus": _number(self.bonus_score)}
        scores = self.part_scores()
        present = {test.part for test in self.tests}
        for part in PARTS:
            row[part] = _number(scores[part][0]) if part in present else ""
        row["status"] = self.status
        row["seconds"] = _number(round(self.execution_time, 1))
        row["message"] = _spreadsheet_safe(" ".join(self.notes[0].split())[:CSV_MESSAGE_CHARS]) if self.notes else ""
        return row

    # ---- dispatch ---------------------------------------------------------------------------

    def render(self, fmt):
        """Render in one of FORMATS."""
        if fmt not in FORMATS:
            raise ValueError(UNKNOWN_FORMAT.format(expected=", ".join(FORMATS), received=fmt))
        return getattr(self, f"to_{fmt}")()


def write_csv(results_list, path_or_file):
    """Write one gradebook row per GradingResults, with a CSV_FIELDS header, to a path or open file."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "w", newline="", encoding="utf-8") as handle:
            write_csv(results_list, handle)
        return
    writer = csv.DictWriter(path_or_file, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for results in results_list:
        writer.writerow(results.csv_row())


def _number(value):
    """Return value as an int when it is whole, so JSON and CSV show 2 rather than 2.0."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 4)


def _points(value):
    """Return points as short text: 2, 1.5, 0.25."""
    return str(_number(value))


def _fraction(score, max_score):
    """Return "score/max" points text."""
    return f"{_points(score)}/{_points(max_score)}"


def _indent(text, prefix):
    """Return text's lines, each behind prefix."""
    return [(prefix + line).rstrip() for line in text.rstrip("\n").splitlines()]


def _terminal_safe(text):
    """Return text with control characters shown as escapes instead of acted on by the terminal."""
    text = text.replace("\r\n", "\n")
    return _TERMINAL_UNSAFE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _xml_safe(text):
    """Return text with the characters XML 1.0 cannot hold shown as escapes."""
    return _XML_ILLEGAL.sub(lambda match: f"\\x{ord(match.group()):02x}"
                            if ord(match.group()) < 0x100 else "\ufffd", str(text))


def _md_inline(text):
    """Return text safe inside a Markdown table cell or heading: one line, no markup, no HTML."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|~#])", r"\\\1", text)


def _html_inline(text):
    """Return text safe inside an HTML element on one line."""
    return html.escape(" ".join(str(text).split()), quote=False)


def _fenced(text):
    """Return the lines of a fenced code block holding text verbatim (fence longer than any run inside)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", *text.rstrip("\n").splitlines(), fence]


def _spreadsheet_safe(text):
    """Return a cell value a spreadsheet will not run as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _clip(text, limit=80):
    """Return the start of text for an error message."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


# ---- files ---------------------------------------------------------------------------------------


def atomic_write(path, text):
    """Write text to path through a temporary file and a rename, so no reader ever sees half a report."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_reports(results, folder):
    """Write the results in every format into folder; return the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = folder / f"report{SUFFIXES[fmt]}"
        atomic_write(path, results.render(fmt))
        paths.append(path)
    return paths
