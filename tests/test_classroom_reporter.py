"""What GitHub Classroom's grading reporter makes of `grader ci`'s step outputs: the grader's points and verdict."""

import base64
import json

import pytest

from grader.integrations import github
from grader.integrations.github import CLASSROOM_RUNNERS, parse_min_score
from grader.results import CheckResult, GradingResults
from tests.classroom_reporter import NODE, annotation_points, run_reporter

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the reporter is JavaScript")

# A class of tests weighted like the kit's hidden tests (points.toml): unequal points, 100 in all.
TESTS = [("shape_math", "conv_output_size", 4), ("shape_math", "head_params", 16), ("augmentation", "layers", 15),
         ("build_cnn", "parameter counts", 5), ("build_cnn", "output shapes", 25), ("build_cnn_v2", "new block", 20),
         ("training", "learns the synthetic shapes", 10), ("filters", "first-layer filters", 5)]


def graded(failed=(), partial=None):
    """Return GradingResults where the named tests failed and partial = (name, points) scored part of its points."""
    tests = []
    for part, name, points in TESTS:
        score = 0 if name in failed else partial[1] if partial and name == partial[0] else points
        tests.append(CheckResult(f"{part}: {name}", part, score, points, "passed" if score == points else "failed",
                                 "" if score == points else f"{name} is wrong"))
    return GradingResults("alice", tests)


def published(results, min_score, tmp_path):
    """Return the step outputs `grader ci` writes for results, read back as GitHub Actions reads $GITHUB_OUTPUT."""
    outputs = tmp_path / "outputs.txt"
    github.publish(results, environ={"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")},
                   min_score=parse_min_score(min_score))
    return dict(line.split("=", 1) for line in outputs.read_text().splitlines())


@pytest.mark.parametrize("failed, score, code", [
    ((), 100, 0),
    (("learns the synthetic shapes", "parameter counts"), 85, 0),   # 100 - 10 - 5
    (("learns the synthetic shapes", "new block"), 70, 1),          # 100 - 10 - 20, below 80 %
], ids=["100", "85", "70"])
def test_the_reporter_shows_the_grade_and_fails_only_below_the_minimum(tmp_path, failed, score, code):
    results = graded(failed=failed)
    assert results.score == score
    outputs = published(results, "80%", tmp_path)
    exit_code, printed = run_reporter(CLASSROOM_RUNNERS, outputs, tmp_path)
    print(printed)   # kept in the test log: what a student sees in the job

    assert exit_code == code, printed
    assert ("::error::Some tests failed." in printed) == (code == 1)
    assert annotation_points(printed) == (score, 100)
    assert f"::notice title=Autograding complete::Points {score}/100" in printed
    assert f"Total points for passed: {score:.2f}/{score}" in printed
    assert f"Total:  | {score} | 100" in printed
    assert "undefined" not in printed and "NaN" not in printed
    lines = printed.splitlines()
    assert sum(line.startswith("✅ ") and line.endswith(" points)") for line in lines) == len(TESTS) - len(failed)
    assert sum(line.startswith("❌ ") and line.endswith(" points)") for line in lines) == len(failed)


def test_partial_credit_shows_on_both_sides(tmp_path):
    results = graded(partial=("output shapes", 10))
    outputs = published(results, "0", tmp_path)
    exit_code, printed = run_reporter(CLASSROOM_RUNNERS, outputs, tmp_path)
    assert exit_code == 0, printed
    assert annotation_points(printed) == (85, 100)
    assert "✅ build_cnn: output shapes (10/25 points)" in printed
    assert "❌ build_cnn: output shapes (10/25 points)" in printed
    assert "passed | 85 | 85" in printed and "failed | 0 | 15" in printed


def test_an_unfinished_grading_errors_whatever_the_score(tmp_path):
    results = graded()
    results.status, results.notes = "error", ["the probe ran out of time"]
    exit_code, printed = run_reporter(CLASSROOM_RUNNERS, published(results, "0", tmp_path), tmp_path)
    assert exit_code == 1 and "::error::Some tests errored." in printed


def test_the_outputs_are_base64_json_with_what_the_reporter_reads(tmp_path):
    outputs = published(graded(failed=["learns the synthetic shapes"]), "80%", tmp_path)
    assert (outputs["score"], outputs["max-score"]) == ("90", "100")
    passed, failed = (json.loads(base64.b64decode(outputs[runner])) for runner in CLASSROOM_RUNNERS)
    assert passed["max_score"] == 90 and failed["max_score"] == 10
    assert {test["status"] for test in passed["tests"]} == {"pass"}
    assert failed["tests"] == [{"name": "training: learns the synthetic shapes (0/10 points)", "status": "fail",
                                "score": 0, "message": "learns the synthetic shapes is wrong", "line_no": 0,
                                "tags": ["training"]}]
    assert passed["status"] == failed["status"] == "pass"
