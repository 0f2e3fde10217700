"""One results object per graded submission, with one renderer per output format.

Grading logic fills a GradingResults; it never formats output. Each `to_*` method renders the same
tests, in the same order, for one audience: the terminal, Gradescope (JSON), CI (JUnit XML, Markdown),
the student (a self-contained HTML feedback page) and the gradebook (CSV rows).

Each test carries Gradescope's visibility (points.toml's [visibility] table). The instructor's formats
(text, JSON, CSV) show every test; the student's show only what a student may see at that moment: the CI
formats (Markdown, JUnit) what they may see before the due date, the HTML page what they may see once
grades are published. Pass `shown=` to choose another moment.
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

from grader import extra_credit
from grader.lesson.manifest import PARTS

PASSED = "passed"
FAILED = "failed"

TITLE = "Lesson 6 — CNNs in Keras"
SUITE = "lesson6"                      # JUnit testsuite name and classname prefix
FORMATS = ("text", "json", "junit", "markdown", "html")
SUFFIXES = {"text": ".txt", "json": ".json", "junit": ".xml", "markdown": ".md", "html": ".html"}
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

# Gradescope's visibility of a test, and which of them a student sees at each moment.
VISIBLE, AFTER_DUE_DATE, AFTER_PUBLISHED, HIDDEN = "visible", "after_due_date", "after_published", "hidden"
VISIBILITIES = (VISIBLE, AFTER_DUE_DATE, AFTER_PUBLISHED, HIDDEN)
SHOWN_BEFORE_DUE_DATE = frozenset({VISIBLE})
SHOWN_AFTER_DUE_DATE = frozenset({VISIBLE, AFTER_DUE_DATE})
SHOWN_AFTER_PUBLISHED = frozenset({VISIBLE, AFTER_DUE_DATE, AFTER_PUBLISHED})
SHOWN_TO_INSTRUCTOR = frozenset(VISIBILITIES)
NOT_SHOWN = "{count} more tests ({points} points) are not shown yet; the score above counts only the tests shown."
BAD_VISIBILITY = ("Invalid visibility {value!r} for {key!r} in the [visibility] table of {where}: expected one of "
                  "{expected}")
BAD_VISIBILITY_KEY = ("Invalid key {key!r} in the [visibility] table of {where}: expected a part ({parts}) or "
                      "part.test_name")

# XML 1.0 forbids most control characters (TensorFlow logs carry ANSI escapes); ElementTree would
# write them unescaped and produce a file no JUnit reader accepts.
_XML_ILLEGAL = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Student output reaches the instructor's terminal; escapes could recolour, erase or forge report lines.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Leading characters that make a spreadsheet treat a cell as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

PICTURE_CAPTIONS = {
    "training_curve": "Accuracy and loss per epoch in the training check",
    "first_layer_filters": "Your network's first-layer 3×3 filters after training",
    "feature_maps": "First-layer feature maps of one test image",
}
FEEDBACK_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 960px;
       color: #222; line-height: 1.4; padding: 0 1rem; }
.lead { color: #555; } .score { font-size: 1.8rem; font-weight: bold; } .warning { color: #a94442; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #ddd; padding: 0.35rem 0.6rem;
  text-align: left; vertical-align: top; } th { background: #f4f4f4; } td.num, th.num { text-align: right; }
tr.passed td:first-child { color: #2e7d32; } tr.failed td:first-child { color: #c62828; }
pre { white-space: pre-wrap; font-size: 0.85rem; margin: 0.3rem 0 0; }
img { max-width: 100%; height: auto; } figure { margin: 1rem 0; } figcaption { color: #555; }
"""


@dataclass
class CheckResult:
    """One hidden test's verdict (named so pytest does not collect it)."""

    name: str                 # e.g. "build_cnn: output shape after every stage"
    part: str                 # one of PARTS; rendered as the test's tags
    score: float
    max_score: float
    status: str               # PASSED or FAILED
    output: str = ""          # what the student reads: empty when passed, the mistake in words when failed
    visibility: str = VISIBLE  # one of VISIBILITIES (Gradescope's), from points.toml's [visibility]
    seconds: float | None = None  # how long the test ran (pytest's setup + call), None where unknown
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
    sandbox: list = field(default_factory=list)      # the probe's isolation layers: {name, held, reason}

    def sandbox_line(self):
        """Return which isolation layers held for this grade, in one line ('' when the probe did not run)."""
        if not self.sandbox:
            return ""
        held = [layer["name"] for layer in self.sandbox if layer.get("held")]
        missing = [f"{layer['name']} ({layer.get('reason', '')})" for layer in self.sandbox if not layer.get("held")]
        return (f"Sandbox layers that held: {', '.join(held) or 'none'}"
                + (f"; not available: {'; '.join(missing)}" if missing else ""))

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

    def graded_parts(self, tests=None):
        """Return {part: (score, max_score)} for the parts that have at least one test, in PARTS order."""
        totals = {}
        for test in self.tests if tests is None else tests:
            score, max_score = totals.get(test.part, (0.0, 0.0))
            totals[test.part] = (score + test.score, max_score + test.max_score)
        return {part: totals[part] for part in sorted(totals, key=_part_order)}

    def shown_tests(self, shown=SHOWN_TO_INSTRUCTOR):
        """Return the tests whose visibility is in shown, and a sentence about the others (empty if none)."""
        tests = [test for test in self.tests if test.visibility in shown]
        others = [test for test in self.tests if test.visibility not in shown]
        note = NOT_SHOWN.format(count=len(others), points=_points(sum(t.max_score for t in others))) if others else ""
        return tests, note

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
            when = "" if test.visibility == VISIBLE else f"  [{test.visibility}]"
            lines.append(f"{mark} {points}  {_terminal_safe(test.name)}{when}")
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
        if self.sandbox:
            lines += ["", self.sandbox_line()]
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
                "sandbox": list(self.sandbox),
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
                    **({"extra_data": {"seconds": round(test.seconds, 3)}} if test.seconds is not None else {}),
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
            seconds = (entry.get("extra_data") or {}).get("seconds")
            tests.append(CheckResult(name=entry.get("name", ""), part=tags[0], score=score,
                                     max_score=max_score, status=status, output=entry.get("output", ""),
                                     visibility=entry.get("visibility", VISIBLE),
                                     seconds=None if seconds is None else float(seconds),
                                     bonus=BONUS_TAG in tags[1:]))
        return cls(submission=extra.get("submission", ""), tests=tests,
                   execution_time=float(data.get("execution_time", 0.0)),
                   probe_output=extra.get("probe_output", ""), notes=list(extra.get("notes", [])),
                   sandbox=list(extra.get("sandbox", [])),
                   artifacts=dict(extra.get("artifacts", {})), status=extra.get("status", "graded"))

    # ---- CI ---------------------------------------------------------------------------------

    def to_junit(self, shown=SHOWN_BEFORE_DUE_DATE):
        """Render JUnit XML (valid under pytest's junit-10.xsd): one testsuite, one testcase per test shown.

        A test's points are in its name ("(3 points)", stable across runs) and its outcome ("0/3 points",
        in the failure message and the testcase's system-out); its time is the test's own where known.
        """
        tests, not_shown = self.shown_tests(shown)
        failures = sum(test.status != PASSED for test in tests)
        suite = ET.Element("testsuite", name=SUITE, tests=str(len(tests)), failures=str(failures),
                           errors="0", skipped="0", time=f"{self.execution_time:.3f}")
        properties = ET.SubElement(suite, "properties")
        score = sum(test.score for test in tests)
        max_score = sum(test.max_score for test in tests if not test.bonus)  # the bonus comes on top
        for name, value in (("submission", self.submission), ("score", _points(score)),
                            ("max_score", _points(max_score)), ("status", self.status)):
            ET.SubElement(properties, "property", name=name, value=_xml_safe(value))
        for note in self.notes + ([not_shown] if not_shown else []):
            ET.SubElement(properties, "property", name="note", value=_xml_safe(str(note)))
        for test in tests:
            attributes = {"classname": f"{SUITE}.{test.part}",
                          "name": _xml_safe(f"{test.name} ({_points(test.max_score)} points)")}
            if test.seconds is not None:
                attributes["time"] = f"{test.seconds:.3f}"
            case = ET.SubElement(suite, "testcase", attributes)
            outcome = f"{_fraction(test.score, test.max_score)} points"
            if test.status != PASSED:
                output = test.output.strip() or "failed"
                failure = ET.SubElement(case, "failure", type="failed",
                                        message=_xml_safe(f"{outcome}: {output.splitlines()[0]}"))
                failure.text = _xml_safe(test.output or "failed")
            ET.SubElement(case, "system-out").text = outcome
        if self.probe_output:
            ET.SubElement(suite, "system-out").text = _xml_safe(self.probe_output)
        ET.indent(suite)
        return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    def to_markdown(self, shown=SHOWN_BEFORE_DUE_DATE):
        """Render the CI step summary / PR comment: score, part table, test table, failure details."""
        tests, not_shown = self.shown_tests(shown)
        score, max_score = sum(t.score for t in tests), sum(t.max_score for t in tests if not t.bonus)
        passed = sum(test.status == PASSED for test in tests)
        lines = [f"## {TITLE}: {headline_score(tests)}", "",
                 f"Submission {_md_inline(self.submission)}: {passed} of {len(tests)} tests passed."]
        if not_shown:
            lines += ["", not_shown]
        if self.status != "graded":
            lines += ["", f"> **{GRADING_UNFINISHED}.**"]
        parts = self.graded_parts(tests)
        if parts:
            lines += ["", "| Part | Score | Max |", "| --- | ---: | ---: |"]
            lines += [f"| `{part}` | {_points(part_score)} | {_points(part_max)} |"
                      for part, (part_score, part_max) in parts.items()]
            lines.append(f"| **Total** | **{_points(score)}** | **{_points(max_score)}** |")
        if tests:
            lines += ["", "| | Test | Points |", "| :---: | --- | ---: |"]
            lines += [f"| {'✅' if test.status == PASSED else '❌'} | {_md_inline(test.name)} | "
                      f"{_fraction(test.score, test.max_score)} |" for test in tests]
        failed = [test for test in tests if test.status != PASSED]
        if failed:
            lines += ["", "### What to fix"]
            for test in failed:
                # An HTML block: GitHub does not read Markdown inside it, so escape for HTML only.
                lines += ["", (f"<details><summary>❌ {_html_inline(test.name)} "
                               f"({_fraction(test.score, test.max_score)})</summary>"), ""]
                lines += _fenced(_terminal_safe(test.output or "(no message)"))
                lines += ["", "</details>"]
        if self.notes:
            lines += ["", "### Notes", ""]
            lines += [f"- {_md_inline(str(note))}" for note in self.notes]
        if self.sandbox:
            lines += ["", f"<sub>{_md_inline(self.sandbox_line())}</sub>"]
        if self.probe_output:
            lines += ["", f"<details><summary>{PRINTED_HEADING}</summary>", ""]
            lines += _fenced(_terminal_safe(self.probe_output))
            lines += ["", "</details>"]
        return "\n".join(lines) + "\n"

    def to_html(self, shown=SHOWN_AFTER_PUBLISHED):
        """Render the student's feedback page: self-contained HTML, the report folder's pictures embedded."""
        e = html.escape
        tests, not_shown = self.shown_tests(shown)
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               f"<title>{e(TITLE)}: {e(self.submission)}</title>", f"<style>{FEEDBACK_STYLE}</style></head><body>",
               f"<h1>{e(TITLE)}</h1>", f'<p class="lead">Feedback for <b>{e(self.submission)}</b></p>',
               f'<p class="score" id="score">{e(headline_score(tests))}</p>']
        if not_shown:
            out.append(f"<p>{e(not_shown)}</p>")
        if self.status != "graded":
            out.append(f'<p class="warning">{e(GRADING_UNFINISHED)}.</p>')
        parts = self.graded_parts(tests)
        if parts:
            out += ['<h2>By part</h2><table id="parts"><tr><th>Part</th><th class="num">Score</th></tr>']
            out += [f'<tr><td><code>{e(part)}</code></td><td class="num">{_fraction(*totals)}</td></tr>'
                    for part, totals in parts.items()]
            out.append("</table>")
        if tests:
            out += ['<h2>Tests</h2><table id="tests"><tr><th></th><th>Test</th><th class="num">Points</th></tr>']
            for test in tests:
                mark, kind = ("✓", "passed") if test.status == PASSED else ("✗", "failed")
                detail = f"<pre>{e(_terminal_safe(test.output))}</pre>" if test.status != PASSED and test.output else ""
                out.append(f'<tr class="{kind}"><td>{mark}</td><td>{e(test.name)}{detail}</td>'
                           f'<td class="num">{_fraction(test.score, test.max_score)}</td></tr>')
            out.append("</table>")
        pictures = [(name, _png_data_uri(path)) for name, path in self.artifacts.items()]
        pictures = [(name, uri) for name, uri in pictures if uri]
        if pictures:
            out.append("<h2>Your network's training</h2>")
            out += [f'<figure><img alt="{e(PICTURE_CAPTIONS.get(name, name))}" src="{uri}">'
                    f"<figcaption>{e(PICTURE_CAPTIONS.get(name, name))}</figcaption></figure>"
                    for name, uri in pictures]
        if self.notes:
            out += ["<h2>Notes</h2><ul>", *[f"<li>{e(str(note))}</li>" for note in self.notes], "</ul>"]
        if self.probe_output:
            out += [f"<details><summary>{e(PRINTED_HEADING)}</summary>",
                    f"<pre>{e(_terminal_safe(self.probe_output))}</pre></details>"]
        out.append("</body></html>")
        return "\n".join(out) + "\n"

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

    def render(self, fmt, **options):
        """Render in one of FORMATS (options such as shown= go to the format's method)."""
        if fmt not in FORMATS:
            raise ValueError(UNKNOWN_FORMAT.format(expected=", ".join(FORMATS), received=fmt))
        return getattr(self, f"to_{fmt}")(**options)


def parse_visibility(table, where="points.toml") -> dict:
    """Return {part or "part.test_name": visibility} from points.toml's [visibility] table, checked."""
    checked = {}
    for key, value in (table or {}).items():
        part, _, test_name = str(key).partition(".")
        if part not in PARTS or (_ and not test_name):
            raise ValueError(BAD_VISIBILITY_KEY.format(key=key, where=where, parts=", ".join(PARTS)))
        if value not in VISIBILITIES:
            raise ValueError(BAD_VISIBILITY.format(value=value, key=key, where=where, expected=", ".join(VISIBILITIES)))
        checked[key] = value
    return checked


def visibility_of(visibility: dict, part: str, test_name: str) -> str:
    """Return a test's visibility: its own entry, else its part's, else visible."""
    return visibility.get(f"{part}.{test_name}", visibility.get(part, VISIBLE))


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


def _part_order(part):
    """Return a part's place in PARTS (unknown parts last, by name)."""
    return (PARTS.index(part), "") if part in PARTS else (len(PARTS), part)


def _png_data_uri(path):
    """Return a data: URI holding a PNG file, or "" when path is not a readable PNG."""
    try:
        data = Path(path).read_bytes() if str(path).lower().endswith(".png") else b""
    except OSError:
        return ""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def headline_score(tests):
    """Return a report's headline score: "91 / 100 points (+5 bonus)" (grader.extra_credit's one rule)."""
    bonus = [test for test in tests if test.bonus]
    return extra_credit.score_text(sum(t.score for t in tests), sum(t.max_score for t in tests if not t.bonus),
                                   sum(t.score for t in bonus), has_bonus=bool(bonus))


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
