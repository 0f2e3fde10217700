"""`grader batch`: a gradebook row for every submission, whatever any one of them does."""

import csv
import io
import os
import re
import time
from pathlib import Path

import pytest

from grader import cli
from grader.batch import (
    BATCH_FORMATS,
    ERROR,
    GRADING_RAISED,
    WORKER_DIED,
    WORKER_TIMED_OUT,
    Progress,
    batch_ids,
    error_results,
    find_submissions,
    grade_batch,
    render_all,
)
from grader.commands import batch as batch_command
from grader.options import GradingOptions
from grader.render import FORMATS, SUFFIXES
from grader.render.gradebook import CSV_FIELDS
from grader.results import HIDDEN, CheckResult, GradingResults
from tests.conftest import run_python

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def stand_in_grader(path, options, trainer, reports=None, submission=None):
    """Grade by file name, instantly: die, hang and raise do what they say; anything else scores 1/1."""
    name = Path(path).name
    if name.startswith("die"):
        os._exit(9)
    if name.startswith("hang"):
        time.sleep(3600)
    if name.startswith("raise"):
        raise RuntimeError("grading blew up")
    test = CheckResult(name="shape_math: stand-in", part="shape_math", score=1, max_score=1, status="passed")
    return GradingResults(submission=submission or name, tests=[test], execution_time=0.01)


def first_line(message):
    return message.split("{")[0].strip()


# --- the scheduler, with a stand-in for grading ---------------------------------------------------------------


def test_a_dying_hanging_or_raising_grading_costs_only_its_own_row(tmp_path):
    names = ["a_ok.py", "die.py", "hang.py", "raise.py", "z_ok.py", "zz_ok.py"]
    for name in names:
        (tmp_path / name).write_text("")
    stream = io.StringIO()
    summary = grade_batch(find_submissions(tmp_path), jobs=2, options=GradingOptions(training=False),
                          progress=Progress(stream, tty=False), grader=stand_in_grader, submission_seconds=4)
    rows = {results.submission: results for results in summary.results}
    ids = [name.removesuffix(".py") for name in names]  # the worker's rows and the error rows alike
    assert [results.submission for results in summary.results] == ids
    assert {key: rows[key].status for key in ids} == {
        "a_ok": "graded", "die": ERROR, "hang": ERROR, "raise": ERROR, "z_ok": "graded", "zz_ok": "graded"}
    assert rows["die"].notes[0].startswith(first_line(WORKER_DIED))
    assert rows["hang"].notes[0].startswith(first_line(WORKER_TIMED_OUT))
    assert rows["raise"].notes[0].startswith(first_line(GRADING_RAISED))
    assert "grading blew up" in rows["raise"].notes[0]
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(names) and lines[-1].startswith(f"[{len(names)}/{len(names)}] ")
    assert any(re.fullmatch(r"\[\d/6\] a_ok 1/1 \(0\.0 s\)", line) for line in lines)


def test_hidden_entries_and_the_batch_s_own_outputs_are_not_submissions(tmp_path):
    for name in ("alice.py", ".DS_Store", "grades.csv", "submission_metadata.yml"):
        (tmp_path / name).write_text("")
    for name in ("bob", "__pycache__", ".git", "reports"):
        (tmp_path / name).mkdir()
    found = find_submissions(tmp_path, exclude=(tmp_path / "grades.csv", tmp_path / "reports"))
    assert [path.name for path in found] == ["alice.py", "bob"]


def test_progress_bar_redraws_one_line_on_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream, tty=True)
    progress.start(2)
    progress.done(error_results("bob.zip", "The grader failed on this submission: boom", 1.25))
    progress.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\r[############------------] 1/2" in text
    assert "bob.zip error: The grader failed on this submission: boom (1.2 s)" in text


def test_batch_ids_drop_the_extension_unless_two_submissions_would_share_one(tmp_path):
    assert batch_ids([tmp_path / "bob.py", tmp_path / "bob.ipynb", tmp_path / "carol.zip", tmp_path / "dave"]) == [
        "bob.py", "bob.ipynb", "carol", "dave"]


@pytest.mark.parametrize("fmt", BATCH_FORMATS)
def test_every_report_of_a_batch_renders_in_one_document(fmt):
    import json
    import xml.etree.ElementTree as ET

    results = [stand_in_grader(name, None, None) for name in ("a.py", "b.py")]
    text = render_all(results, fmt)
    if fmt == "json":
        assert [entry["extra_data"]["submission"] for entry in json.loads(text)] == ["a.py", "b.py"]
    elif fmt == "junit":
        assert len(ET.fromstring(text.split("?>", 1)[1]).findall("testsuite")) == 2
    else:
        assert "a.py" in text and "b.py" in text


def test_the_batch_s_ci_formats_show_the_instructor_every_test_and_leave_html_to_reports():
    import xml.etree.ElementTree as ET

    results = stand_in_grader("a.py", None, None)
    results.tests.append(CheckResult(name="training: later", part="training", score=0, max_score=10,
                                     status="failed", output="too low", visibility=HIDDEN))
    names = [case.get("name") for case in ET.fromstring(render_all([results], "junit").split("?>", 1)[1]).iter(
        "testcase")]
    assert names == ["shape_math: stand-in (1 points)", "training: later (10 points)"]
    assert "training: later" in render_all([results], "markdown")
    assert "html" in FORMATS and "html" not in BATCH_FORMATS
    with pytest.raises(ValueError, match="Received: format='html'"):
        render_all([results], "html")


def test_cli_forwards_batch_flags_to_batch_main(monkeypatch):
    seen = {}
    monkeypatch.setattr(batch_command, "main", lambda **kwargs: seen.update(kwargs) or 0)
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["batch", "class", "--jobs", "3", "--output", "g.csv", "--reports", "r", "--format", "json",
                 "--no-training", "--dataset", "cifar10", "--cache-dir", "c", "--no-cache", "--total-timeout", "30",
                 "--roster", "roster.csv", "--canvas", "canvas.csv", "--moodle", "moodle.csv", "--only", "bob", "eve",
                 "--allow-partial"])
    assert exit_info.value.code == 0
    options = seen.pop("options")
    assert options.limits.total_seconds == 30
    assert seen == {"folder": "class", "jobs": 3, "output": "g.csv", "reports": "r", "fmt": "json",
                    "roster": "roster.csv", "canvas": "canvas.csv", "moodle": "moodle.csv", "only": ["bob", "eve"],
                    "allow_partial": True}
    assert (options.training, options.dataset, options.cache, options.cache_dir) == (False, "cifar10", False, "c")


def test_batch_has_no_html_on_stdout(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["batch", "class", "--format", "html"])
    assert exit_info.value.code == 2 and "invalid choice: 'html'" in capsys.readouterr().err


def test_batch_of_a_missing_folder_or_no_workers_is_a_usage_error(tmp_path, capsys):
    assert batch_command.main(folder=str(tmp_path / "nope")) == 2
    assert "not a folder" in capsys.readouterr().err
    assert batch_command.main(folder=str(tmp_path), jobs=0) == 2
    assert "Received: jobs=0" in capsys.readouterr().err


# --- end to end -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_grades_every_kind_of_submission_into_a_gradebook_and_reports(tmp_path):
    from benchmarks.class_folder import make_class

    names = ["bob.py", "dave.ipynb", "erin.zip", "grace", "judy.py", "mallory.py"]
    make_class(tmp_path / "class", names)
    (tmp_path / "class" / ".hidden.py").write_text("raise SystemExit")
    gradebook, reports = tmp_path / "grades.csv", tmp_path / "reports"
    done = run_python("-m", "grader", "batch", str(tmp_path / "class"), "--jobs", "2", "--no-training",
                      "--output", str(gradebook), "--reports", str(reports), "--function-timeout", "5",
                      timeout=400)
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(gradebook.read_text()))}
    ids = ["bob", "dave", "erin", "grace", "judy", "mallory"]
    assert list(rows) == ids and tuple(next(csv.reader(io.StringIO(gradebook.read_text())))) == CSV_FIELDS
    assert all(row["status"] == "graded" for row in rows.values())
    full = str(int(rows["bob"]["max_score"]) + int(rows["bob"]["bonus"]))   # the lesson's points, and the bonus
    assert rows["bob"]["bonus"] == "5"
    assert {key: rows[key]["score"] for key in ("bob", "dave", "erin")} == {"bob": full, "dave": full, "erin": full}
    assert rows["judy"]["score"] == "0"                               # exits at import
    assert rows["mallory"]["build_cnn_v2"] == "0"                     # hangs in build_cnn_v2 only
    assert rows["mallory"]["build_cnn"] == rows["bob"]["build_cnn"]
    assert float(rows["grace"]["score"]) < float(full)                # forgot Rescaling
    for key in ids:
        assert sorted(path.name for path in (reports / key).iterdir()) == sorted(
            f"report{SUFFIXES[fmt]}" for fmt in FORMATS)
    assert (reports / "summary.html").is_file() and "6 submissions: 6 graded" in (reports / "summary.md").read_text()
    assert f"[{len(names)}/{len(names)}] " in done.stderr and "Gradebook:" in done.stderr


@pytest.mark.slow
def test_workers_share_one_training_run_for_equivalent_models(tmp_path):
    from benchmarks.class_folder import make_class

    paths = make_class(tmp_path / "class", ["bob.py", "carol.py"])
    options = GradingOptions(cache_dir=str(tmp_path / "cache"))
    summary = grade_batch(paths, jobs=2, options=options, reports=str(tmp_path / "reports"))
    assert (summary.trained, summary.reused) == (1, 1)
    bob, carol = summary.results
    assert [(t.name, t.score, t.output) for t in bob.tests] == [(t.name, t.score, t.output) for t in carol.tests]
    assert [t.status for t in bob.tests if t.part == "training"] == ["passed"]
    for key in ("bob", "carol"):  # the reused outcome draws the same pictures
        assert {"report.json", "training_curve.png", "first_layer_filters.png", "feature_maps.png"} <= {
            path.name for path in (tmp_path / "reports" / key).iterdir()}
