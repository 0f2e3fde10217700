"""Pull-request CI: the student repo's workflow, `grader ci` run as its grading step, and reports that agree."""

import base64
import html
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from grader import cli
from grader.integrations import github
from grader.integrations.github import (
    BELOW_MINIMUM,
    INVALID_MIN_SCORE,
    MinScore,
    parse_min_score,
    render_workflow,
    verdict,
)
from grader.report import CheckResult, GradingResults
from grader.lesson.stubs import STUB_MODULES, make_stub
from tests.conftest import SOLUTIONS

SECRETS = re.compile(r"\$\{\{\s*secrets\.(\w+)")


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(render_workflow(grade_args="--no-training"))


def steps_by_name(workflow):
    return {step.get("name", step.get("uses")): step for step in workflow["jobs"]["grade"]["steps"]}


def grade_step(workflow):
    return next(step for step in workflow["jobs"]["grade"]["steps"] if step.get("id") == "grade")


def test_runs_on_pull_requests_and_pushes_to_main(workflow):
    triggers = workflow.get("on", workflow.get(True))   # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]


def test_only_the_install_step_sees_the_secrets(workflow):
    steps = workflow["jobs"]["grade"]["steps"]
    install = steps_by_name(workflow)["Install the grader (private)"]
    assert set(SECRETS.findall(json.dumps(install))) == {"GRADER_TOKEN", "GRADER_INDEX_URL"}
    assert 'git+https://x-access-token:${GRADER_TOKEN}@github.com/${GRADER_REPO}.git' in install["run"]
    assert '--extra-index-url "$GRADER_INDEX_URL"' in install["run"]
    for step in steps:
        if step is not install:   # the grading step runs the student's code: no secret may reach it
            assert not SECRETS.findall(json.dumps(step)), step
    assert not SECRETS.findall(json.dumps(workflow["jobs"]["grade"].get("env", {})))


def test_grades_once_and_reports_everywhere(workflow):
    step = grade_step(workflow)
    assert step["run"].startswith("grader ci . --min-score \"$MIN_SCORE\" --junit grader-junit.xml")
    assert step["run"].endswith("--no-training")
    names = [step.get("uses", "").split("@")[0] for step in workflow["jobs"]["grade"]["steps"]]
    assert names.index("actions/checkout") < names.index("actions/setup-python")
    reporter = steps_by_name(workflow)["Report the points to GitHub Classroom"]
    assert reporter["uses"].startswith("classroom-resources/autograding-grading-reporter@")
    assert reporter["env"]["GRADE_RESULTS"] == "${{ steps.grade.outputs.result }}"
    assert reporter["with"]["runners"] == "grade"


def test_the_course_settings_are_filled_in():
    text = render_workflow(grader_repo="cs231/l6-grader", grader_ref="v2", min_score="45", python_version="3.12")
    assert "vars.GRADER_REPO || 'cs231/l6-grader'" in text and "vars.GRADER_REF || 'v2'" in text
    assert "vars.MIN_SCORE || '45'" in text and 'python-version: "3.12"' in text
    assert "@" + "GRADER_REPO@" not in text
    with pytest.raises(ValueError, match="Invalid minimum score"):
        render_workflow(min_score="most")
    with pytest.raises(ValueError, match="Invalid grade arguments '--no-training; curl evil': expected something"):
        render_workflow(grade_args="--no-training; curl evil")
    with pytest.raises(ValueError, match="Invalid grader repository"):
        render_workflow(grader_repo="course/grader' || true")


@pytest.mark.parametrize("text, max_score, points", [("0", 90, 0), ("45", 90, 45), ("80%", 90, 72),
                                                     (" 100% ", 50, 50)])
def test_min_score_is_points_or_a_percentage(text, max_score, points):
    assert parse_min_score(text).points(max_score) == points


@pytest.mark.parametrize("text", ["most", "-1", "120%", "nan", ""])
def test_a_bad_min_score_says_where_it_came_from(text):
    with pytest.raises(ValueError) as error:
        parse_min_score(text)
    assert str(error.value) == INVALID_MIN_SCORE.format(text=text, where="--min-score")


def test_an_unfinished_grading_fails_the_check_whatever_the_score():
    results = GradingResults("repo", [CheckResult("shape_math: x", "shape_math", 1, 1, "passed")], status="error",
                             notes=["the probe ran out of time"])
    code, message = verdict(results, MinScore(0))
    assert code == 1 and "the probe ran out of time" in message


# --- the grading step, run as GitHub Actions would run it ---------------------------------------------------


def run_grading_step(workflow, repo, tmp_path, min_score, extra=""):
    """Run the workflow's grading command in repo with GitHub's files; return (process, summary, outputs)."""
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs), "GITHUB_ACTIONS": "true",
           "MIN_SCORE": min_score, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", grade_step(workflow)["run"] + extra], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = outputs.read_text().splitlines() if outputs.exists() else []
    values = dict(line.split("=", 1) for line in lines)
    return done, summary.read_text() if summary.exists() else "", values


def student_repo(tmp_path, solved):
    """Return a student repository whose exercises/ holds the solution of the modules in solved, stubs elsewhere."""
    exercises = tmp_path / "repo" / "exercises"
    exercises.mkdir(parents=True)
    for name in STUB_MODULES:
        source = (SOLUTIONS / name).read_text()
        (exercises / name).write_text(source if name in solved else make_stub(source))
    return exercises.parent


@pytest.fixture(scope="module")
def solved_run(workflow, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("solved")
    return run_grading_step(workflow, student_repo(tmp_path, STUB_MODULES), tmp_path, "100%")


@pytest.fixture(scope="module")
def partial_run(workflow, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("partial")
    repo = student_repo(tmp_path, ["shape_math.py"])
    done, summary, outputs = run_grading_step(workflow, repo, tmp_path, "50%", extra=" --json grader-report.json")
    return done, summary, outputs, repo


def classroom_result(outputs):
    return json.loads(base64.b64decode(outputs[github.CLASSROOM_OUTPUT]))


def test_solutions_pass_the_check(solved_run):
    done, summary, outputs = solved_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary.startswith("## Lesson 6 — CNNs in Keras: ") and "| ✅ |" in summary and "| ❌ |" not in summary
    result = classroom_result(outputs)
    assert result["status"] == "pass" and result["tests"]
    lesson = sum(test["score"] for test in result["tests"] if "bonus" not in test["tags"])
    assert lesson == result["max_score"] == float(outputs["max-score"])
    assert "::notice title=Lesson 6 score::Score: " in done.stdout


def test_below_the_minimum_the_check_fails_but_still_reports(partial_run):
    done, summary, outputs, repo = partial_run
    assert done.returncode == 1, done.stderr[-3000:]
    result = classroom_result(outputs)
    score, max_score = float(outputs["score"]), float(outputs["max-score"])
    assert 0 < score < max_score / 2
    assert result["status"] == "fail" and {test["status"] for test in result["tests"]} == {"pass", "fail"}
    assert "### What to fix" in summary and "is not implemented yet" in summary
    message = BELOW_MINIMUM.format(score=f"{score:g}", max_score=f"{max_score:g}", minimum=f"{max_score / 2:g}",
                                   text="50%")
    assert message in done.stderr
    assert f"::error title=Lesson 6 score::{github.workflow_command_data(message)}" in done.stdout
    assert summary.startswith(f"## Lesson 6 — CNNs in Keras: {score:g} / {max_score:g}")
    assert "Submission repo:" in summary   # named after the repository's folder, not "."
    assert ET.parse(repo / "grader-junit.xml").getroot().tag == "testsuite"


def markdown_tests(markdown):
    """Return [(name, passed, points)] from the Markdown report's test table."""
    rows = re.findall(r"^\| (✅|❌) \| (.+) \| ([\d.]+)/([\d.]+) \|$", markdown, flags=re.MULTILINE)
    return [(html.unescape(re.sub(r"\\(.)", r"\1", name)), mark == "✅", float(score))
            for mark, name, score, _max in rows]


def test_junit_and_markdown_match_the_json_report_test_for_test(partial_run):
    _done, summary, outputs, repo = partial_run
    report = json.loads((repo / "grader-report.json").read_text())
    expected = [(test["name"], test["status"] == "passed", float(test["score"])) for test in report["tests"]]
    assert len(expected) > 10 and {passed for _, passed, _ in expected} == {True, False}

    suite = ET.parse(repo / "grader-junit.xml").getroot()
    junit = [(case.get("name"), case.find("failure") is None,
              float(case.find("properties/property[@name='score']").get("value"))) for case in suite.iter("testcase")]
    assert junit == expected
    assert markdown_tests(summary) == expected
    assert [(test["name"], test["status"] == "pass", float(test["score"]))
            for test in classroom_result(outputs)["tests"]] == expected
    assert int(suite.get("tests")) == len(expected)
    assert int(suite.get("failures")) == sum(not passed for _, passed, _ in expected)


def test_outside_github_actions_nothing_is_written(tmp_path, monkeypatch, capsys):
    results = GradingResults("repo", [CheckResult("shape_math: x", "shape_math", 1, 2, "failed", "no")])
    github.publish(results, environ={}, junit=tmp_path / "j.xml")
    assert (tmp_path / "j.xml").exists()
    assert github.NO_SUMMARY in capsys.readouterr().err


def test_cli_forwards_its_flags(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(github, "ci_main", lambda **kwargs: seen.update(kwargs) or 1)
    with pytest.raises(SystemExit) as done:
        cli.run(["ci", "repo", "--min-score", "80%", "--junit", "j.xml", "--json", "r.json", "--no-training",
                 "--memory", "2"])
    assert done.value.code == 1
    assert seen["path"] == "repo" and seen["min_score"] == MinScore(80.0, percent=True, text="80%")
    assert (seen["junit"], seen["json_path"], seen["options"].training, seen["options"].dataset) == (
        "j.xml", "r.json", False, "synthetic")
    assert seen["options"].limits.memory_bytes == 2 * 2**30


def test_cli_refuses_a_bad_min_score(capsys):
    with pytest.raises(SystemExit) as done:
        cli.run(["ci", "repo", "--min-score", "lots"])
    assert done.value.code == 2
    assert INVALID_MIN_SCORE.format(text="lots", where="--min-score") in capsys.readouterr().err


def test_no_hidden_tests_live_in_the_workflow(workflow):
    text = json.dumps(workflow)
    assert "hidden_tests" not in text and "solutions" not in text
