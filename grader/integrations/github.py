"""GitHub: the two workflow templates, and `grader ci`, a grading step for a workflow the instructor controls.

A student repository cannot keep a secret from its student, so the kit writes two workflows:

- the student repository's (`grade.yml`) runs only the visible tests, one GitHub Classroom command-grader step per
  test file, and reports them to Classroom as feedback; it needs no secret and installs nothing private;
- the instructor's (`grade_class.yml`), kept in the private grader repository, checks out the class's repositories
  with the instructor's token and runs `grader batch`: its grades.csv is the grade of record.

`grader ci` grades one repository in a job that may hold the grader: the Markdown report goes to the step summary
($GITHUB_STEP_SUMMARY), the GitHub Classroom result to the step's outputs ($GITHUB_OUTPUT), JUnit XML to a file,
and the exit code fails the check below the minimum score.
"""

import argparse
import base64
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.integrations import render, template
from grader.render.common import summary
from grader.render.gradescope_json import to_json
from grader.render.junit import to_junit
from grader.render.markdown import to_markdown
from grader.render.text import to_text
from grader.results import GRADED
from grader.store import atomic_write

WORKFLOW_PATH = ".github/workflows/grade.yml"
INSTRUCTOR_WORKFLOW = "grade_class.yml"
DEFAULT_PYTHON = "3.11"
DEFAULT_CLASS_ORG = "COURSE-ORG"
DEFAULT_REPO_PREFIX = "lesson6-"
DEFAULT_CRON = "30 5 * * 1"           # Mondays 05:30 UTC
DEFAULT_SHARDS = 4                     # runners grading the class at once (`grader batch --shard K/N`), then a merge
MAX_SHARDS = 256                       # GitHub Actions runs at most 256 jobs of one matrix
# What the workflows' placeholders accept: nothing that could break out of YAML or a shell line.
OWNER = re.compile(r"[\w.-]+")
PREFIX = re.compile(r"[\w.-]*")
VERSION = re.compile(r"3\.\d+")
FLAGS = re.compile(r"[\w .=-]*")
CRON = re.compile(r"[\d*/,-]+( [\d*/,-]+){4}")

# GitHub Classroom's reporter (classroom-resources/autograding-grading-reporter v1) shows, per runner, the share of
# tests that passed times the runner's max_score, and sends Classroom the sum of the tests' scores. Those agree only
# when a runner's tests all pass or all fail, so `grader ci` reports two runners: the points earned and the points
# missed. These are the step's output names and the reporter's `runners` input.
CLASSROOM_RUNNERS = ("passed", "failed")
NOTHING_EARNED = "No points earned"
NOTHING_MISSED = "No points missed"

MIN_SCORE_HELP = "fail (exit 1) below this score: points (45) or a percentage of the maximum (80%%) (default: 0)"
JUNIT_HELP = "also write the JUnit XML report to this file"
JSON_HELP = "also write the JSON (Gradescope results.json) report to this file"
INVALID_MIN_SCORE = "Invalid minimum score {text!r} from {where}: expected points (45) or a percentage (80%)"
INVALID_SETTING = "Invalid {name} {value!r}: expected something like {example}"
BELOW_MINIMUM = "Score {score} / {max_score} is below the minimum of {minimum} ({text}): the check fails."
GRADING_ERROR = "Grading could not finish, so the check fails: {notes}"
NO_SUMMARY = "GITHUB_STEP_SUMMARY is not set: the Markdown report goes nowhere (outside GitHub Actions?)"


@dataclass(frozen=True)
class MinScore:
    """A passing bar: points, or a percentage of whatever the maximum score turns out to be."""

    value: float
    percent: bool = False
    text: str = "0"

    def points(self, max_score):
        """Return the bar in points for a report worth max_score."""
        return max_score * self.value / 100 if self.percent else self.value


def parse_min_score(text, where="--min-score"):
    """Return the MinScore that text ("45", "80%") asks for."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1] if raw.endswith("%") else raw)
    except ValueError:
        raise ValueError(INVALID_MIN_SCORE.format(text=text, where=where)) from None
    if value < 0 or value != value or (raw.endswith("%") and value > 100):
        raise ValueError(INVALID_MIN_SCORE.format(text=text, where=where))
    return MinScore(value=value, percent=raw.endswith("%"), text=raw)


def min_score_type(text):
    """Parse --min-score for argparse."""
    try:
        return parse_min_score(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def check_settings(*settings):
    """Raise ValueError for the first (name, value, pattern, example) whose value the pattern refuses."""
    for name, value, pattern, example in settings:
        if not pattern.fullmatch(value):
            raise ValueError(INVALID_SETTING.format(name=name, value=value, example=example))


def render_student_workflow(*, python_version: str = DEFAULT_PYTHON) -> str:
    """Return the student repository's workflow: the visible tests, reported to GitHub Classroom as feedback."""
    check_settings(("Python version", python_version, VERSION, "3.11"))
    return render(template("grade.yml"), {"PYTHON_VERSION": python_version})


def render_instructor_workflow(*, class_org: str = DEFAULT_CLASS_ORG, repo_prefix: str = DEFAULT_REPO_PREFIX,
                               python_version: str = DEFAULT_PYTHON, batch_args: str = "",
                               cron: str = DEFAULT_CRON, shards: int = DEFAULT_SHARDS) -> str:
    """Return the instructor's workflow: fetch the class, grade it in `shards` runners, merge their grades."""
    check_settings(("organization", class_org, OWNER, "my-course-org"),
                   ("repository prefix", repo_prefix, PREFIX, "lesson6-"),
                   ("Python version", python_version, VERSION, "3.11"),
                   ("batch arguments", batch_args, FLAGS, "--no-training"),
                   ("schedule", cron, CRON, "30 5 * * 1"))
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"Invalid number of shards {shards!r}: expected a whole number from 1 to {MAX_SHARDS}")
    return render(template(INSTRUCTOR_WORKFLOW), {"SHARDS": str(shards),
                                                  "SHARD_LIST": ", ".join(str(k) for k in range(1, shards + 1)),
        "CLASS_ORG": class_org, "REPO_PREFIX": repo_prefix, "PYTHON_VERSION": python_version,
        "BATCH_ARGS": batch_args, "CRON": cron})


def classroom_results(results, min_score) -> dict:
    """Return GitHub Classroom's reporter input per runner in CLASSROOM_RUNNERS: the points earned, then missed.

    Classroom has no extra credit (its total is the sum of the runners' maxima), so the bonus stays out of it: the
    points there are the lesson's, and the bonus shows in the step summary, the JSON and the JUnit reports.
    """
    code, _message = verdict(results, min_score)
    status = "pass" if code == 0 else "fail" if results.status == GRADED else "error"
    lesson = [test for test in results.tests if not test.bonus]
    earned = [classroom_test(test, test.score, "pass") for test in lesson if test.score > 0]
    missed = [classroom_test(test, test.max_score - test.score, "fail") for test in lesson
              if test.score < test.max_score]
    earned_points = sum(test.score for test in lesson)
    # An empty runner would show NaN points: the reporter divides by its number of tests.
    earned = earned or [{"name": NOTHING_EARNED, "status": "fail", "score": 0, "line_no": 0}]
    missed = missed or [{"name": NOTHING_MISSED, "status": "pass", "score": 0, "line_no": 0}]
    return {
        "passed": {"version": 1, "status": status, "message": summary(results),
                   "max_score": _number(earned_points), "tests": earned},
        "failed": {"version": 1, "status": status, "message": summary(results),
                   "max_score": _number(results.max_score - earned_points), "tests": missed},
    }


def classroom_test(test, points, status):
    """Return one test as the reporter reads it: points earned (status pass) or missed (status fail, score 0)."""
    return {
        "name": f"{test.name} ({_number(test.score)}/{_number(test.max_score)} points)",
        "status": status,
        "score": _number(points) if status == "pass" else 0,
        "message": test.output if status == "fail" else "",
        "line_no": 0,          # the reporter prints "- line <line_no>" after the name unless it is 0
        "tags": [test.part],
    }


def encode_classroom(result) -> str:
    """Return a runner's result as the reporter decodes it: base64 of its JSON."""
    return base64.b64encode(json.dumps(result, ensure_ascii=False).encode("utf-8")).decode("ascii")


def _number(value):
    """Return value as an int when it is whole, so the reporter shows 85 rather than 85.0."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 4)


def append(path, text):
    """Append text to one of the files GitHub Actions reads after a step."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def publish(results, *, environ, min_score=MinScore(0.0), junit=None, json_path=None):
    """Write the one grading run everywhere GitHub reads it: step summary, step outputs, report files."""
    if environ.get("GITHUB_STEP_SUMMARY"):
        append(environ["GITHUB_STEP_SUMMARY"], to_markdown(results))
    else:
        print(NO_SUMMARY, file=sys.stderr)
    if environ.get("GITHUB_OUTPUT"):
        # base64 has no newlines, so each value fits the one-line name=value form.
        lines = [f"{runner}={encode_classroom(result)}"
                 for runner, result in classroom_results(results, min_score).items()]
        lines += [f"score={_number(results.score)}", f"max-score={_number(results.max_score)}"]
        append(environ["GITHUB_OUTPUT"], "\n".join(lines) + "\n")
    if junit:
        atomic_write(junit, to_junit(results))
    if json_path:
        atomic_write(json_path, to_json(results))


def verdict(results, min_score):
    """Return (exit code, message): 0 when the grading finished at or above the minimum, else 1."""
    if results.status != GRADED:
        return 1, GRADING_ERROR.format(notes="; ".join(str(note) for note in results.notes) or "see the report")
    minimum = min_score.points(results.max_score)
    if results.score < minimum:
        return 1, BELOW_MINIMUM.format(score=f"{results.score:g}", max_score=f"{results.max_score:g}",
                                       minimum=f"{minimum:g}", text=min_score.text)
    return 0, summary(results)


def workflow_command_data(text):
    """Return text escaped for the message of a GitHub workflow command (one line)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def ci_main(*, path, min_score=None, junit=None, json_path=None, options=None, environ=None):
    """Grade a repository once, publish the result to GitHub Actions, and return the check's exit code."""
    from grader.grade import grade
    from grader.options import GradingOptions

    environ = os.environ if environ is None else environ
    min_score = min_score or MinScore(0.0)
    if not Path(path).exists():
        print(f"grader ci: no such file or folder: {path}", file=sys.stderr)
        return 2
    print(f"Grading {path} ...", file=sys.stderr)
    # Resolved, so the report names the repository's folder rather than ".".
    results = grade(Path(path).resolve(), options or GradingOptions())
    sys.stdout.write(to_text(results))
    publish(results, environ=environ, min_score=min_score, junit=junit, json_path=json_path)
    code, message = verdict(results, min_score)
    if environ.get("GITHUB_ACTIONS") == "true":
        # Workflow commands: GitHub shows these as annotations on the run and the pull request.
        level = "notice" if code == 0 else "error"
        print(f"::{level} title=Lesson 6 score::{workflow_command_data(message)}")
    print(message, file=sys.stderr)
    return code
