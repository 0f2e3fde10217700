"""Grade a student's repository in GitHub Actions: the workflow template, and `grader ci`, its grading step.

One grading run feeds every place GitHub shows a result: the Markdown report goes to the job's step summary
($GITHUB_STEP_SUMMARY), the GitHub Classroom result (`result=<base64 JSON>`) to the step's outputs
($GITHUB_OUTPUT), JUnit XML to a file, and the exit code fails the check below the minimum score.
"""

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.integrations import render, template

WORKFLOW_PATH = ".github/workflows/grade.yml"
DEFAULT_GRADER_REPO = "COURSE/lesson6-grader"
DEFAULT_GRADER_REF = "main"
DEFAULT_MIN_SCORE = "100%"
DEFAULT_PYTHON = "3.11"
# What the workflow's placeholders accept: nothing that could break out of YAML or a shell line.
REPO = re.compile(r"[\w.-]+/[\w.-]+")
REF = re.compile(r"[\w.][\w./-]*")
FLAGS = re.compile(r"[\w .=-]*")
CLASSROOM_OUTPUT = "result"          # the step output GitHub Classroom's grading reporter decodes

MIN_SCORE_HELP = "fail (exit 1) below this score: points (45) or a percentage of the maximum (80%%) (default: 0)"
JUNIT_HELP = "also write the JUnit XML report to this file"
JSON_HELP = "also write the JSON (Gradescope results.json) report to this file"
INVALID_MIN_SCORE = "Invalid minimum score {text!r} from {where}: expected points (45) or a percentage (80%)"
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


def render_workflow(*, grader_repo=DEFAULT_GRADER_REPO, grader_ref=DEFAULT_GRADER_REF, min_score=DEFAULT_MIN_SCORE,
                    python_version=DEFAULT_PYTHON, grade_args=""):
    """Return the student repository's grading workflow (YAML) with the course's settings filled in."""
    parse_min_score(min_score, where="the workflow's minimum score")
    for name, value, pattern, example in (("grader repository", grader_repo, REPO, "COURSE/lesson6-grader"),
                                          ("grader ref", grader_ref, REF, "main or v1.2"),
                                          ("Python version", python_version, REF, "3.11"),
                                          ("grade arguments", grade_args, FLAGS, "--no-training")):
        if not pattern.fullmatch(value):
            raise ValueError(f"Invalid {name} {value!r}: expected something like {example}")
    return render(template("grade.yml"), {
        "GRADER_REPO": grader_repo, "GRADER_REF": grader_ref, "MIN_SCORE": min_score,
        "PYTHON_VERSION": python_version, "GRADE_ARGS": grade_args,
    })


def append(path, text):
    """Append text to one of the files GitHub Actions reads after a step."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def publish(results, *, environ, junit=None, json_path=None):
    """Write the one grading run everywhere GitHub reads it: step summary, step outputs, report files."""
    if environ.get("GITHUB_STEP_SUMMARY"):
        append(environ["GITHUB_STEP_SUMMARY"], results.to_markdown())
    else:
        print(NO_SUMMARY, file=sys.stderr)
    if environ.get("GITHUB_OUTPUT"):
        # base64 has no newlines, so each value fits the one-line name=value form.
        report = results.to_dict()
        append(environ["GITHUB_OUTPUT"], f"{CLASSROOM_OUTPUT}={results.to_github_classroom(encoded=True)}\n"
                                         f"score={report['score']}\nmax-score={report['max_score']}\n")
    if junit:
        Path(junit).write_text(results.to_junit(), encoding="utf-8")
    if json_path:
        Path(json_path).write_text(results.to_json(), encoding="utf-8")


def verdict(results, min_score):
    """Return (exit code, message): 0 when the grading finished at or above the minimum, else 1."""
    if results.status != "graded":
        return 1, GRADING_ERROR.format(notes="; ".join(str(note) for note in results.notes) or "see the report")
    minimum = min_score.points(results.max_score)
    if results.score < minimum:
        return 1, BELOW_MINIMUM.format(score=f"{results.score:g}", max_score=f"{results.max_score:g}",
                                       minimum=f"{minimum:g}", text=min_score.text)
    return 0, results.summary()


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
    sys.stdout.write(results.to_text())
    publish(results, environ=environ, junit=junit, json_path=json_path)
    code, message = verdict(results, min_score)
    if environ.get("GITHUB_ACTIONS") == "true":
        # Workflow commands: GitHub shows these as annotations on the run and the pull request.
        level = "notice" if code == 0 else "error"
        print(f"::{level} title=Lesson 6 score::{workflow_command_data(message)}")
    print(message, file=sys.stderr)
    return code
