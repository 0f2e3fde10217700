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
    WORKER_DIED,
    WORKER_TIMED_OUT,
    batch_ids,
    error_results,
    find_submissions,
    grade_batch,
)
from grader.commands import batch as batch_command
from grader.options import GradingOptions
from grader.render import FORMATS, SUFFIXES
from grader.render.batch import BATCH_FORMATS, Progress, render_all
from grader.render.gradebook import CSV_FIELDS
from grader.results import HIDDEN, CheckResult, GradingResults
from grader.worker import ERROR, GRADING_RAISED
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
                 "--allow-partial", "--training-slots", "0", "--shard", "2/4"])
    assert exit_info.value.code == 0
    options = seen.pop("options")
    assert options.limits.total_seconds == 30
    assert seen == {"folder": "class", "jobs": 3, "output": "g.csv", "reports": "r", "fmt": "json",
                    "roster": "roster.csv", "canvas": "canvas.csv", "moodle": "moodle.csv", "only": ["bob", "eve"],
                    "allow_partial": True, "training_slots": 0, "shard": "2/4"}
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


# --- training slots ---------------------------------------------------------------------------------------------


def test_a_training_slot_is_held_by_one_worker_at_a_time(tmp_path):
    import threading

    from grader.worker import TrainingSlots

    slots, order = TrainingSlots(tmp_path, 1), []
    inside = threading.Event()

    def second():
        with slots.hold():
            order.append("second")

    with slots.hold():
        waiter = threading.Thread(target=second)
        waiter.start()
        inside.wait(0.5)  # time for the second to reach the lock
        order.append("first done")
    waiter.join(10)
    assert order == ["first done", "second"]


def test_a_worker_killed_while_training_frees_its_slot(tmp_path):
    import subprocess
    import sys

    from grader.worker import TrainingSlots

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from grader.worker import TrainingSlots\n"
        f"with TrainingSlots({str(tmp_path)!r}, 1).hold():\n    print('held', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "held"
        holder.kill()
        holder.wait(10)
        started = time.monotonic()
        with TrainingSlots(tmp_path, 1).hold():
            assert time.monotonic() - started < 5
    finally:
        holder.kill()


def test_training_runs_hold_a_slot_and_cache_hits_do_not(tmp_path):
    from grader.worker import PhaseClock, TrainingSlots, schedule_training

    class Cache:  # the shape of grader.cache.TrainingCache: it calls .trainer on a miss only
        def __init__(self):
            self.trainer = lambda config, **kwargs: slot_taken()

        def __call__(self, config, **kwargs):
            return "hit" if config == "known" else self.trainer(config, **kwargs)

    slots = TrainingSlots(tmp_path, 1)

    def slot_taken():
        import fcntl

        with open(slots.paths[0], "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return "trained in the slot"
            return "trained outside the slot"

    clock = PhaseClock()
    trainer = schedule_training(Cache(), slots, clock)
    assert trainer("new") == "trained in the slot"
    assert trainer("known") == "hit"
    assert schedule_training(lambda config, **kwargs: slot_taken(), slots, clock)("new") == "trained in the slot"
    assert schedule_training(None, slots, clock) is None
    assert set(clock.report()) == {"probe", "training", "waiting for a training slot", "hidden tests and reports"}


# --- shards and `grader merge` -----------------------------------------------------------------------------------


def reporting_stand_in(path, options, trainer, reports=None, submission=None):
    """stand_in_grader, writing the reports a real batch writes (merge builds the summary from them)."""
    from grader.store import report_folder, write_reports

    results = stand_in_grader(path, options, trainer, reports, submission)
    name = Path(path).name
    if name.startswith("half"):
        results.tests.append(CheckResult(name="filters: stand-in", part="filters", score=0, max_score=1,
                                         status="failed", output="half marks"))
    if reports:
        write_reports(results, report_folder(reports, results.submission))
    return results


@pytest.fixture
def stand_in_batches(monkeypatch):
    """Make `grader batch`'s main grade with reporting_stand_in, in workers that never import TensorFlow."""
    import grader.batch

    real = grader.batch.grade_batch
    monkeypatch.setattr(grader.batch, "grade_batch", lambda paths, **kwargs: real(paths, grader=reporting_stand_in,
                                                                                  **kwargs))


def normalised(path):
    """Return a gradebook's text with the per-run seconds column blanked."""
    rows = list(csv.reader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    column = rows[0].index("seconds")
    return [row[:column] + [""] + row[column + 1:] for row in rows]


def test_shard_is_a_stable_hash_of_the_entry_name():
    from grader.shards import parse_shard, shard_of

    names = [f"student_{number}.py" for number in range(400)]
    shards = [shard_of(name, 4) for name in names]
    assert set(shards) == {1, 2, 3, 4} and all(60 < shards.count(k) < 140 for k in (1, 2, 3, 4))
    assert [shard_of(name, 4) for name in names + ["late_one.py"]][:400] == shards   # a new file moves no one
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "2/4/8"):
        with pytest.raises(ValueError, match=r"--shard expects K/N.*Received: "):
            parse_shard(bad)


def test_four_shards_merge_into_the_gradebook_summary_and_exports_of_one_run(tmp_path, stand_in_batches, capsys):
    from grader.commands import merge

    folder = tmp_path / "class"
    folder.mkdir()
    names = ["ann.py", "bo.py", "cy.py", "di.py", "ed.py", "half_fay.py", "gil.py", "half_hal.py", "raise_ivy.py",
             "jo.py", "half_kim.py"]
    for name in names:
        (folder / name).write_text("")
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email,sis_id\n" + "".join(
        f"{name.split('.')[0]},{name},{name}@uni.edu,{number}\n" for number, name in enumerate(names)))
    one = tmp_path / "one"
    def batch(*args):
        return cli.run(["batch", str(folder), "--roster", str(roster), *args])

    for args in (["--jobs", "2"], *[["--shard", f"{k}/4", "--jobs", "1"] for k in range(1, 5)]):
        out = one if len(args) == 2 else tmp_path / f"s{args[1][0]}"
        with pytest.raises(SystemExit) as exit_info:
            batch("--output", str(out / "grades.csv"), "--reports", str(out / "reports"),
                  "--canvas", str(out / "canvas.csv"), "--moodle", str(out / "moodle.csv"), *args)
        assert exit_info.value.code == 0, capsys.readouterr().err
    sizes = [len(normalised(tmp_path / f"s{k}" / "grades.csv")) - 1 for k in range(1, 5)]
    assert sum(sizes) == len(names) and sum(1 for size in sizes if size) >= 3, sizes
    merged = tmp_path / "merged"
    code = merge.main(shards=[str(tmp_path / f"s{k}") for k in (3, 1, 4, 2)], output=str(merged / "grades.csv"),
                      reports=str(merged / "reports"), roster=str(roster), canvas=str(merged / "canvas.csv"),
                      moodle=str(merged / "moodle.csv"))
    assert code == 0, capsys.readouterr().err
    assert normalised(merged / "grades.csv") == normalised(one / "grades.csv")
    assert [row[0] for row in normalised(merged / "grades.csv")][1:] == [name.split(".")[0] for name in sorted(names)]
    for name in ("summary.md", "summary.html"):
        assert (merged / "reports" / name).read_bytes() == (one / "reports" / name).read_bytes(), name
    assert (merged / "moodle.csv").read_bytes() == (one / "moodle.csv").read_bytes()
    assert (merged / "canvas.csv").read_bytes() == (one / "canvas.csv").read_bytes()
    assert sorted(path.name for path in (merged / "reports").iterdir()) == sorted(
        path.name for path in (one / "reports").iterdir())
    short = tmp_path / "short_roster.csv"
    short.write_text("\n".join(roster.read_text().splitlines()[:-1]) + "\n")  # the last student left out
    capsys.readouterr()
    assert merge.main(shards=[str(tmp_path / f"s{k}") for k in range(1, 5)], output=str(tmp_path / "g.csv"),
                      roster=str(short), canvas=str(tmp_path / "c.csv")) == 2
    assert "half_kim" in capsys.readouterr().err and not (tmp_path / "c.csv").exists()


def test_merge_says_which_shards_are_missing_or_twice(tmp_path, stand_in_batches, capsys):
    from grader.commands import merge

    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a.py", "b.py", "c.py", "d.py"):
        (folder / name).write_text("")
    for k in (1, 2):
        with pytest.raises(SystemExit):
            cli.run(["batch", str(folder), "--shard", f"{k}/3", "--jobs", "1", "--output",
                     str(tmp_path / f"s{k}" / "grades.csv")])
    capsys.readouterr()
    assert merge.main(shards=[str(tmp_path / "s1"), str(tmp_path / "s2")], output=str(tmp_path / "g.csv")) == 2
    assert "expected shards 1 to 3, each once. Received: 1/3" in capsys.readouterr().err
    assert merge.main(shards=[str(tmp_path / "s1"), str(tmp_path / "s1")], output=str(tmp_path / "g.csv")) == 2
    assert "each once" in capsys.readouterr().err
    assert merge.main(shards=[str(tmp_path / "class")], output=str(tmp_path / "g.csv")) == 2
    assert "is not a shard's output" in capsys.readouterr().err
    assert not (tmp_path / "g.csv").exists()


@pytest.mark.slow
def test_four_shard_processes_in_parallel_merge_into_one_run_s_gradebook(tmp_path):
    """Real grading (training off): four `grader batch --shard K/4` processes at once, merged, equal one run."""
    import subprocess
    import sys

    from benchmarks.class_folder import SMALL_CLASS, make_class

    make_class(tmp_path / "class", SMALL_CLASS)
    common = [sys.executable, "-m", "grader", "batch", str(tmp_path / "class"), "--no-training", "--jobs", "1",
              "--cache-dir", str(tmp_path / "cache")]  # one cache folder shared by the shards, as on one runner
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    shards = [subprocess.Popen([*common, "--shard", f"{k}/4", "--output", str(tmp_path / f"s{k}" / "grades.csv"),
                                "--reports", str(tmp_path / f"s{k}" / "reports")], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in range(1, 5)]
    outputs = [shard.communicate(timeout=600) for shard in shards]
    assert [shard.returncode for shard in shards] == [0] * 4, [err[-2000:] for _out, err in outputs]
    merged = run_python("-m", "grader", "merge", *[str(tmp_path / f"s{k}") for k in range(1, 5)], "--output",
                        str(tmp_path / "merged" / "grades.csv"), "--reports", str(tmp_path / "merged" / "reports"))
    assert merged.returncode == 0, merged.stderr
    one = run_python("-m", "grader", "batch", str(tmp_path / "class"), "--no-training", "--jobs", "2", "--output",
                     str(tmp_path / "one" / "grades.csv"), "--reports", str(tmp_path / "one" / "reports"),
                     "--no-cache", timeout=600)
    assert one.returncode == 0, one.stderr
    assert normalised(tmp_path / "merged" / "grades.csv") == normalised(tmp_path / "one" / "grades.csv")
    assert (tmp_path / "merged" / "reports" / "summary.md").read_text() == (
        tmp_path / "one" / "reports" / "summary.md").read_text()
