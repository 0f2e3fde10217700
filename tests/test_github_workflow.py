"""GitHub: the student workflow (visible tests, no secret), the instructor workflow (grades) and `grader ci`."""

import base64
import html
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from grader import cli
from grader.integrations import github, release
from grader.integrations.github import (
    BELOW_MINIMUM,
    CLASSROOM_RUNNERS,
    INVALID_MIN_SCORE,
    MinScore,
    parse_min_score,
    render_instructor_workflow,
    render_student_workflow,
    verdict,
)
from grader.lesson.stubs import STUB_MODULES, make_stub
from grader.results import CheckResult, GradingResults
from tests.classroom_reporter import NODE, annotation_points, run_reporter
from tests.conftest import EXERCISES, ROOT, SOLUTIONS

SECRETS = re.compile(r"\$\{\{\s*secrets\.(\w+)")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", flags=re.MULTILINE)
FETCH = "Fetch the class's repositories"
REPORTER = "classroom-resources/autograding-grading-reporter@"
BONUS_TESTS = "test_filters.py"   # the visible tests of the bonus part (extra credit)


def triggers(workflow):
    return workflow.get("on", workflow.get(True))   # YAML 1.1 reads a bare `on` as true


def only_job(workflow):
    (job,) = workflow["jobs"].values()
    return job


def all_steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def step_named(workflow, name):
    return next(step for step in all_steps(workflow) if step.get("name") == name)


@pytest.fixture(scope="module")
def student_text():
    return render_student_workflow()


@pytest.fixture(scope="module")
def instructor_text():
    return render_instructor_workflow(class_org="my-org", repo_prefix="lesson6-", batch_args="--no-training")


@pytest.fixture(scope="module")
def student(student_text):
    return yaml.safe_load(student_text)


@pytest.fixture(scope="module")
def instructor(instructor_text):
    return yaml.safe_load(instructor_text)


# --- both workflows -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["student_text", "instructor_text"])
def test_every_action_is_pinned_to_a_commit_and_checkouts_keep_no_credentials(which, request):
    text = request.getfixturevalue(which)
    workflow = yaml.safe_load(text)
    uses = [line.split("uses: ", 1)[1] for line in text.splitlines() if "uses: " in line]
    assert uses and all(PINNED.match(used) for used in uses), uses
    assert workflow["permissions"] == {"contents": "read"}
    checkouts = [step for step in all_steps(workflow) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and all(step["with"]["persist-credentials"] is False for step in checkouts)


# --- the student repository's workflow ------------------------------------------------------------------------------


def test_the_student_workflow_holds_no_secret_and_installs_nothing_private(student, student_text):
    assert not SECRETS.findall(student_text)
    runs = [step["run"] for step in only_job(student)["steps"] if "run" in step]
    assert runs == ["python -m pip install -r requirements.txt", "python -m pytest exercises/test_filters.py"]
    content = json.dumps(student)   # what GitHub runs: the comments left out
    assert not any(word in content for word in ("lesson6-grader", "git+", "index-url", "hidden", "solutions"))


def test_the_student_workflow_skips_classrooms_first_commit_and_runs_on_pushes_and_pull_requests(student):
    assert only_job(student)["if"] == "github.actor != 'github-classroom[bot]'"
    assert "pull_request" in triggers(student) and triggers(student)["push"]["branches"] == ["main"]
    assert "pull_request_target" not in triggers(student)


def test_each_lesson_test_file_is_one_classroom_test_and_the_reporter_reads_them_all(student):
    steps = only_job(student)["steps"]
    graders = [step for step in steps if step.get("uses", "").startswith("classroom-resources/autograding-command")]
    commands = sorted(step["with"]["command"] for step in graders)
    lesson = [path for path in EXERCISES.glob("test_*.py") if path.name != BONUS_TESTS]
    assert commands == sorted(f"python -m pytest exercises/{path.name}" for path in lesson)
    assert all(step["with"]["max-score"] == 1 for step in graders)
    (reporter,) = [step for step in steps if step.get("uses", "").startswith(REPORTER)]
    assert reporter["uses"].startswith("classroom-resources/autograding-grading-reporter@")
    ids = [step["id"] for step in graders]
    assert reporter["with"]["runners"] == ",".join(ids)
    # The reporter reads runner r from the variable R_RESULTS.
    assert reporter["env"] == {f"{id.upper()}_RESULTS": f"${{{{ steps.{id}.outputs.result }}}}" for id in ids}


def test_the_python_version_is_filled_in_and_checked():
    assert 'python-version: "3.12"' in render_student_workflow(python_version="3.12")
    with pytest.raises(ValueError, match=r"Invalid Python version '3.12; curl evil': expected something like 3.11"):
        render_student_workflow(python_version="3.12; curl evil")


def test_a_failing_bonus_never_makes_the_student_s_job_red(student):
    # The reporter fails the job when any runner it reads failed (setFailed in its main.js): the bonus is not one
    # of them. Its tests still run, after the reporter, in a step that may fail without failing the job.
    steps = only_job(student)["steps"]
    (bonus,) = [step for step in steps if BONUS_TESTS in step.get("run", "") + json.dumps(step.get("with", {}))]
    assert bonus["continue-on-error"] is True and "uses" not in bonus and bonus["if"] == "${{ !cancelled() }}"
    reporter_at = next(i for i, step in enumerate(steps) if step.get("uses", "").startswith(REPORTER))
    assert steps.index(bonus) > reporter_at and "filters" not in steps[reporter_at]["with"]["runners"]


# --- the instructor's workflow ----------------------------------------------------------------------------------


def test_the_instructor_workflow_runs_on_demand_and_on_a_schedule(instructor):
    assert set(triggers(instructor)) == {"workflow_dispatch", "schedule"}
    assert triggers(instructor)["schedule"] == [{"cron": github.DEFAULT_CRON}]


def test_only_the_clone_step_sees_the_token(instructor):
    fetch = step_named(instructor, FETCH)
    assert SECRETS.findall(json.dumps(fetch)) == ["CLASSROOM_TOKEN"]
    for step in all_steps(instructor):
        if step is not fetch:
            assert not SECRETS.findall(json.dumps(step)), step
    for name, job in instructor["jobs"].items():
        assert not SECRETS.findall(json.dumps(job.get("env", {}))), name
        assert ("environment" in job) == (name == "fetch"), name  # student code runs where no token is


def test_the_instructor_workflow_grades_shards_in_a_matrix_and_merges_them(instructor):
    fetch, grade, merge = (instructor["jobs"][name] for name in ("fetch", "grade", "merge"))
    assert grade["needs"] == "fetch" and merge["needs"] == "grade"
    assert grade["strategy"]["matrix"]["shard"] == list(range(1, github.DEFAULT_SHARDS + 1))
    assert grade["env"]["SHARD"] == "${{ matrix.shard }}"
    assert step_named(instructor, "Install the grader")["run"] == "python -m pip install ."
    assert step_named(instructor, "Grade")["run"] == (
        f'grader batch submissions --shard "$SHARD/{github.DEFAULT_SHARDS}" --output shard/grades.csv '
        "--reports shard/reports --cache-dir .grader-cache --no-training")
    cache = step_named(instructor, "Restore the training and verdict caches")
    assert cache["uses"].startswith("actions/cache@") and cache["with"]["path"] == ".grader-cache"
    assert cache["with"]["key"].startswith(cache["with"]["restore-keys"])  # any earlier run's shard restores
    passed = step_named(instructor, "Pass the submissions on")
    assert passed["with"]["path"].split() == ["submissions/", "commits.csv"] and passed in fetch["steps"]
    assert step_named(instructor, "Keep the shard's grades")["with"]["name"] == "grades-shard-${{ matrix.shard }}"
    assert step_named(instructor, "Get the shards' grades")["with"] == {"pattern": "grades-shard-*", "path": "shards"}
    assert step_named(instructor, "Merge")["run"].splitlines()[0] == (
        "grader merge shards/grades-shard-* --output grades.csv --reports reports")
    upload = step_named(instructor, "Keep the grades")
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert upload["with"]["path"].split() == ["grades.csv", "commits.csv", "reports/"] and upload in merge["steps"]


def test_the_number_of_shards_is_filled_in_and_checked():
    workflow = yaml.safe_load(render_instructor_workflow(shards=1))
    assert workflow["jobs"]["grade"]["strategy"]["matrix"]["shard"] == [1]
    assert '--shard "$SHARD/1"' in step_named(workflow, "Grade")["run"]
    for shards in (0, 257, "4", True):
        with pytest.raises(ValueError, match="Invalid number of shards"):
            render_instructor_workflow(shards=shards)


def test_the_instructor_settings_are_filled_in_and_checked():
    text = render_instructor_workflow(class_org="cs231-fall", repo_prefix="cnn-", cron="0 9 * * 5")
    assert "vars.CLASS_ORG || 'cs231-fall'" in text and "vars.REPO_PREFIX || 'cnn-'" in text
    assert '- cron: "0 9 * * 5"' in text and "@" + "CLASS_ORG@" not in text
    for settings, message in [({"class_org": "org' || true"}, "Invalid organization"),
                              ({"batch_args": "--jobs 2; curl evil"}, "Invalid batch arguments"),
                              ({"cron": "daily"}, "Invalid schedule 'daily': expected something like 30 5 * * 1")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            render_instructor_workflow(**settings)


FAKE_GH = """#!/bin/bash
# A stand-in for the GitHub CLI: lists and clones the repositories under $FAKE_GITHUB.
echo "$GH_TOKEN" > "$FAKE_GITHUB/token-seen"
case "$1 $2" in
  "repo list") cat "$FAKE_GITHUB/listed.txt" ;;
  "repo clone") git clone "${@:6}" "file://$FAKE_GITHUB/$3" "$4" ;;
  *) echo "fake gh: unexpected $*" >&2; exit 2 ;;
esac
"""


def commit_repo(path, files):
    """Make a git repository at path holding files {relative name: text}; return its commit."""
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git = ["git", "-C", str(path), "-c", "user.name=Student", "-c", "user.email=s@example.com"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "work"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def exercises_with(solved):
    """Return {path: text} of an exercises/ folder: the solution of the modules in solved, stubs elsewhere."""
    return {f"exercises/{name}": (SOLUTIONS / name).read_text() if name in solved
            else make_stub((SOLUTIONS / name).read_text()) for name in STUB_MODULES}


@pytest.fixture(scope="module")
def fake_github(tmp_path_factory):
    """Return (folder, {repo: commit}): two class repositories, one unrelated repository, and a fake gh on PATH."""
    root = tmp_path_factory.mktemp("github")
    commits = {"my-org/lesson6-alice": commit_repo(root / "my-org" / "lesson6-alice", exercises_with(STUB_MODULES)),
               "my-org/lesson6-bob": commit_repo(root / "my-org" / "lesson6-bob", exercises_with(["shape_math.py"])),
               "my-org/website": commit_repo(root / "my-org" / "website", {"index.html": "hi"})}
    (root / "listed.txt").write_text("\n".join(commits) + "\n")
    (root / "bin").mkdir()
    (root / "bin" / "gh").write_text(FAKE_GH)
    (root / "bin" / "gh").chmod(stat.S_IRWXU)
    return root, commits


def run_step(step, cwd, fake, **env):
    """Run a workflow step's shell script in cwd as GitHub Actions would, with the fake gh; return the process."""
    environ = {**os.environ, "FAKE_GITHUB": str(fake), "GITHUB_ACTIONS": "true", "TF_CPP_MIN_LOG_LEVEL": "3",
               "PATH": f"{fake / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               **step.get("env", {}), **env}
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=600, check=False)


def test_the_clone_step_fetches_the_prefixed_repositories_without_their_git_folders(instructor, fake_github, tmp_path):
    fake, commits = fake_github
    done = run_step(step_named(instructor, FETCH), tmp_path, fake, GH_TOKEN="t0ken", CLASS_REPOS="",
                    CLASS_ORG="my-org", REPO_PREFIX="lesson6-")
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in (tmp_path / "submissions").iterdir()) == ["lesson6-alice", "lesson6-bob"]
    assert (tmp_path / "submissions" / "lesson6-alice" / "exercises" / "cnn.py").read_text() == (
        SOLUTIONS / "cnn.py").read_text()
    assert not list((tmp_path / "submissions").glob("*/.git"))
    assert (tmp_path / "commits.csv").read_text().splitlines() == [
        "repository,commit", f"my-org/lesson6-alice,{commits['my-org/lesson6-alice']}",
        f"my-org/lesson6-bob,{commits['my-org/lesson6-bob']}"]
    assert (fake / "token-seen").read_text().strip() == "t0ken"
    leaked = [path for path in tmp_path.rglob("*") if path.is_file() and b"t0ken" in path.read_bytes()]
    assert not leaked


def test_the_clone_step_takes_an_explicit_list_and_refuses_what_is_not_a_repository(instructor, fake_github,
                                                                                    tmp_path):
    fake, _commits = fake_github
    fetch = step_named(instructor, FETCH)

    def fetch_in(folder, **env):
        (tmp_path / folder).mkdir()
        return run_step(fetch, tmp_path / folder, fake, **env)

    done = fetch_in("one", GH_TOKEN="t", CLASS_REPOS="my-org/lesson6-bob")
    assert done.returncode == 0, done.stderr
    assert [path.name for path in (tmp_path / "one" / "submissions").iterdir()] == ["lesson6-bob"]

    done = fetch_in("bad", GH_TOKEN="t", CLASS_REPOS="my-org/x;rm")
    assert done.returncode == 1
    assert "::error title=Bad repository name::Expected OWNER/NAME. Received: my-org/x;rm" in done.stdout

    done = fetch_in("no-token", GH_TOKEN="", CLASS_REPOS="my-org/lesson6-bob")
    assert done.returncode == 1 and "Set the CLASSROOM_TOKEN secret" in done.stdout

    done = fetch_in("nothing", GH_TOKEN="t", CLASS_REPOS="", CLASS_ORG="my-org", REPO_PREFIX="lesson7-")
    assert done.returncode == 1
    assert "No repository of my-org starts with lesson7-, and CLASS_REPOS is empty." in done.stdout


@pytest.mark.slow
def test_the_grading_and_merge_steps_write_the_gradebook(fake_github, tmp_path):
    """fetch, two shards and the merge, as the jobs run them, the artifacts moved as GitHub moves them."""
    workflow = yaml.safe_load(render_instructor_workflow(class_org="my-org", batch_args="--no-training", shards=2))
    fake, commits = fake_github
    fetched = run_step(step_named(workflow, FETCH), tmp_path, fake, GH_TOKEN="t", CLASS_REPOS="",
                       CLASS_ORG="my-org", REPO_PREFIX="lesson6-")
    assert fetched.returncode == 0, fetched.stderr
    # The steps call `grader`: put this checkout's grader first on PATH.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "grader").write_text(f'#!/bin/bash\nexec "{sys.executable}" -m grader "$@"\n')
    (shim / "grader").chmod(stat.S_IRWXU)
    path = {"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    for shard in ("1", "2"):  # each on a runner of its own: a copy of what the fetch job uploaded
        runner = tmp_path / f"runner{shard}"
        shutil.copytree(tmp_path / "submissions", runner / "submissions")
        done = run_step(step_named(workflow, "Grade"), runner, fake, SHARD=shard, **path)
        assert done.returncode == 0, done.stderr[-3000:]
        shutil.copytree(runner / "shard", tmp_path / "shards" / f"grades-shard-{shard}")
    (tmp_path / "fetched").mkdir()
    shutil.copy(tmp_path / "commits.csv", tmp_path / "fetched" / "commits.csv")
    (tmp_path / "commits.csv").unlink()
    done = run_step(step_named(workflow, "Merge"), tmp_path, fake, **path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(commits)[:2] == [row.split(",")[0] for row in (tmp_path / "commits.csv").read_text().splitlines()[1:]]
    rows = {row.split(",")[0]: row.split(",") for row in (tmp_path / "grades.csv").read_text().splitlines()[1:]}
    assert set(rows) == {"lesson6-alice", "lesson6-bob"}
    alice, bob = rows["lesson6-alice"], rows["lesson6-bob"]
    assert float(alice[1]) == float(alice[2]) + float(alice[3]) and float(bob[1]) < float(bob[2]), rows  # + bonus
    assert (tmp_path / "reports" / "lesson6-alice").is_dir()


# --- what `grader release` writes, checked by the workflow linters ---------------------------------------------------


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Return the paths of the two workflows `grader release --instructor-workflow` writes."""
    root = tmp_path_factory.mktemp("released")
    code = release.release_main(out=root / "student", instructor_workflow=root / "grader" / "grade_class.yml")
    assert code == 0
    return [root / "student" / github.WORKFLOW_PATH, root / "grader" / "grade_class.yml"]


def linter(name):
    path = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.skip(f"{name} is not installed (pip install check-jsonschema zizmor): the workflows go unchecked")
    return path


def test_the_released_workflows_follow_githubs_schema(released):
    done = subprocess.run([linter("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, released)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing_in_the_released_workflows(released):
    # The pedantic persona: also no unnamed jobs, and the token kept to an environment.
    done = subprocess.run([linter("zizmor"), "--offline", "--persona=pedantic", "--no-progress",
                           *map(str, released)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout


def test_the_instructor_workflow_never_goes_into_the_release(tmp_path, capsys):
    code = release.release_main(out=tmp_path / "student",
                                instructor_workflow=tmp_path / "student" / ".github" / "workflows" / "class.yml")
    assert code == 2
    assert "The instructor workflow must not go into the student release" in capsys.readouterr().err
    assert not (tmp_path / "student").exists()


# --- `grader ci`: one grading run, every report, and the Classroom result -----------------------------------------


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


@pytest.mark.parametrize("minimum", [MinScore(100, percent=True, text="100%"), MinScore(10)])
def test_a_failing_bonus_never_fails_grader_ci(minimum):
    lesson = [CheckResult("shape_math: x", "shape_math", 10, 10, "passed")]
    bonus = CheckResult("filters: y", "filters", 0, 5, "failed", "no", bonus=True)
    assert verdict(GradingResults("repo", lesson), minimum)[0] == 0
    assert verdict(GradingResults("repo", [*lesson, bonus]), minimum)[0] == 0     # the same verdict with it


def student_repo(tmp_path, solved):
    """Return a student repository whose exercises/ holds the solution of the modules in solved, stubs elsewhere."""
    repo = tmp_path / "repo"
    for name, text in exercises_with(solved).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    return repo


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory):
    """Run `grader ci` as a workflow step would on a repository with only shape_math solved."""
    tmp_path = tmp_path_factory.mktemp("partial")
    repo = student_repo(tmp_path, ["shape_math.py"])
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs), "GITHUB_ACTIONS": "true",
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT),    # this checkout's grader, from any folder
           "XDG_CACHE_HOME": str(tmp_path / "cache")}              # its caches' default folder, not the user's
    done = subprocess.run([sys.executable, "-m", "grader", "ci", ".", "--min-score", "50%", "--junit",
                           "grader-junit.xml", "--json", "grader-report.json", "--no-training"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False)
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines()) if outputs.exists() else {}
    return done, summary.read_text() if summary.exists() else "", values, repo


def classroom_result(outputs, runner):
    return json.loads(base64.b64decode(outputs[runner]))


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_below_the_minimum_the_check_fails_but_still_reports(partial_run):
    done, summary, outputs, repo = partial_run
    assert done.returncode == 1, done.stderr[-3000:]
    score, max_score = float(outputs["score"]), float(outputs["max-score"])
    assert 0 < score < max_score / 2
    assert {classroom_result(outputs, runner)["status"] for runner in CLASSROOM_RUNNERS} == {"fail"}
    assert "### What to fix" in summary and "is not implemented yet" in summary
    message = BELOW_MINIMUM.format(score=f"{score:g}", max_score=f"{max_score:g}", minimum=f"{max_score / 2:g}",
                                   text="50%")
    assert message in done.stderr
    assert f"::error title=Lesson 6 score::{github.workflow_command_data(message)}" in done.stdout
    assert summary.startswith(f"## Lesson 6 — CNNs in Keras: {score:g} / {max_score:g}")
    assert "Submission repo:" in summary   # named after the repository's folder, not "."
    assert ET.parse(repo / "grader-junit.xml").getroot().tag == "testsuite"


@pytest.mark.skipif(NODE is None, reason="node is not installed: the reporter is JavaScript")
def test_the_classroom_reporter_shows_the_graders_points(partial_run, tmp_path):
    _done, _summary, outputs, _repo = partial_run
    code, printed = run_reporter(CLASSROOM_RUNNERS, outputs, tmp_path)
    score, max_score = float(outputs["score"]), float(outputs["max-score"])
    assert code == 1 and "::error::Some tests failed." in printed
    assert annotation_points(printed) == (score, max_score)
    assert f"Total:  | {score:g} | {max_score:g}" in printed
    assert "undefined" not in printed and "NaN" not in printed


def markdown_tests(markdown):
    """Return [(name, passed, points)] from the Markdown report's test table."""
    rows = re.findall(r"^\| (✅|❌) \| (.+) \| ([\d.]+)/([\d.]+) \|$", markdown, flags=re.MULTILINE)
    return [(html.unescape(re.sub(r"\\(.)", r"\1", name)), mark == "✅", float(score))
            for mark, name, score, _max in rows]


def test_junit_markdown_and_classroom_match_the_json_report_test_for_test(partial_run):
    _done, summary, outputs, repo = partial_run
    report = json.loads((repo / "grader-report.json").read_text())
    expected = [(test["name"], test["status"] == "passed", float(test["score"])) for test in report["tests"]]
    assert len(expected) > 10 and {passed for _, passed, _ in expected} == {True, False}

    suite = ET.parse(repo / "grader-junit.xml").getroot()
    junit = [(case.get("name").rsplit(" (", 1)[0], case.find("failure") is None,
              float(case.find("system-out").text.split("/")[0])) for case in suite.iter("testcase")]
    assert junit == expected
    assert markdown_tests(summary) == expected
    # Classroom has no extra credit: the bonus tests stay out of it (they are in every other report).
    bonus = {test["name"] for test in report["tests"] if "bonus" in test["tags"]}
    lesson = [(name, ok, points) for name, ok, points in expected if name not in bonus]
    assert bonus and len(lesson) < len(expected)
    passed, failed = (classroom_result(outputs, runner)["tests"] for runner in CLASSROOM_RUNNERS)
    assert sorted(test["name"].rsplit(" (", 1)[0] for test in passed) == sorted(n for n, ok, _ in lesson if ok)
    assert sorted(test["name"].rsplit(" (", 1)[0] for test in failed) == sorted(n for n, ok, _ in lesson if not ok)
    assert sum(test["score"] for test in passed) == sum(points for _, _, points in lesson)
    assert int(suite.get("failures")) == sum(not passed for _, passed, _ in expected)


def test_outside_github_actions_nothing_is_written(tmp_path, capsys):
    results = GradingResults("repo", [CheckResult("shape_math: x", "shape_math", 1, 2, "failed", "no")])
    github.publish(results, environ={}, junit=tmp_path / "j.xml")
    assert (tmp_path / "j.xml").exists()
    assert github.NO_SUMMARY in capsys.readouterr().err


def test_cli_forwards_its_flags(monkeypatch):
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
    assert (seen["options"].cache, seen["options"].verdict_cache, seen["options"].cache_dir) == (True, True, None)


def test_cli_takes_the_cache_flags_grade_takes(monkeypatch):
    seen = {}
    monkeypatch.setattr(github, "ci_main", lambda **kwargs: seen.update(kwargs) or 0)
    for flags, expected in ((["--cache-dir", "c"], (True, True, "c")), (["--no-cache"], (False, False, None))):
        with pytest.raises(SystemExit):
            cli.run(["ci", "repo", *flags])
        assert (seen["options"].cache, seen["options"].verdict_cache, seen["options"].cache_dir) == expected


def test_ci_refuses_a_missing_sandbox_as_grade_does(monkeypatch, tmp_path, capsys):
    """--require-sandbox without a sandbox: exit 2 and the reason, nothing published, no traceback."""
    from grader import grade
    from grader.options import GradingOptions

    def refuse(*args, **kwargs):
        raise grade.SandboxRequired("no sandbox layer could be set up here")

    monkeypatch.setattr(grade, "grade", refuse)
    summary = tmp_path / "summary.md"
    code = github.ci_main(path=str(tmp_path), options=GradingOptions(require_sandbox=True, cache=False),
                          junit=str(tmp_path / "j.xml"), environ={"GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 2 and "grader ci: no sandbox layer could be set up here" in capsys.readouterr().err
    assert not summary.exists() and not (tmp_path / "j.xml").exists()


def test_ci_names_a_missing_path_and_what_was_expected(tmp_path, capsys):
    assert github.ci_main(path=str(tmp_path / "nope"), environ={}) == 2
    assert f"grader ci: no such file or folder: {tmp_path / 'nope'} (expected a .py file" in capsys.readouterr().err


def test_cli_refuses_a_bad_min_score(capsys):
    with pytest.raises(SystemExit) as done:
        cli.run(["ci", "repo", "--min-score", "lots"])
    assert done.value.code == 2
    assert INVALID_MIN_SCORE.format(text="lots", where="--min-score") in capsys.readouterr().err
