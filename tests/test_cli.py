"""The command line: flags reach the main functions as keywords, and the README's main job works."""

import json
import threading

import pytest

from grader import cli
from grader.commands import calibrate as calibrate_command
from grader.commands import grade as grade_command
from grader.sandbox import Limits
from grader.training.calibration import BROKEN_SEEDS
from tests.conftest import run_python


@pytest.fixture
def calls(monkeypatch):
    """Record the keywords each *_main function receives instead of running it."""
    seen = {}
    for name, module in (("grade_main", grade_command), ("calibrate_main", calibrate_command)):
        monkeypatch.setattr(module, "main", lambda _name=name, **kwargs: seen.setdefault(_name, kwargs) and 0)
    return seen


def test_grade_flags_reach_grade_main(calls):
    with pytest.raises(SystemExit) as exit_:
        cli.run(["grade", "sub.py", "--format", "json", "--output", "r.json", "--no-training", "--memory", "2",
                 "--import-timeout", "30"])
    assert exit_.value.code == 0
    kwargs = calls["grade_main"]
    assert kwargs["path"] == "sub.py" and kwargs["fmt"] == "json" and kwargs["output"] == "r.json"
    assert kwargs["options"].training is False and kwargs["options"].dataset == "synthetic"
    assert kwargs["options"].limits == Limits(import_seconds=30, memory_bytes=2 * 2**30)


def test_grade_defaults(calls):
    with pytest.raises(SystemExit):
        cli.run(["grade", "solutions"])
    kwargs = calls["grade_main"]
    assert (kwargs["fmt"], kwargs["output"], kwargs["options"].training, kwargs["options"].limits) == (
        "text", None, True, Limits())


def test_calibrate_flags_reach_calibrate_main(calls):
    with pytest.raises(SystemExit):
        cli.run(["calibrate", "--seeds", "3", "--output", "c.json"])
    assert calls["calibrate_main"] == {"seeds": 3, "broken_seeds": BROKEN_SEEDS, "dataset": "synthetic",
                                       "output": "c.json", "expectations_only": False}
    calls.clear()
    with pytest.raises(SystemExit):
        cli.run(["calibrate", "--expectations"])
    assert calls["calibrate_main"]["expectations_only"] is True and calls["calibrate_main"]["output"] is None


def test_unknown_format_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.run(["grade", "x.py", "--format", "pdf"])
    assert exit_.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


def test_missing_path_says_what_was_expected(tmp_path, capsys):
    assert grade_command.main(path=str(tmp_path / "nope.py")) == 2
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "expected a .py file, a folder, a .ipynb notebook or a .zip" in err


def test_grade_refuses_a_missing_sandbox_with_the_reason(monkeypatch, tmp_path, capsys):
    from grader import grade
    from grader.options import GradingOptions

    def refuse(*args, **kwargs):
        raise grade.SandboxRequired("no sandbox layer could be set up here")

    monkeypatch.setattr(grade, "grade", refuse)
    output = tmp_path / "report.txt"
    assert grade_command.main(path=str(tmp_path), output=str(output),
                              options=GradingOptions(require_sandbox=True, cache=False)) == 2
    assert "grader grade: no sandbox layer could be set up here" in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.slow
def test_grade_solutions_gives_full_marks_with_training(tmp_path):
    done = run_python("-m", "grader", "grade", "solutions", "--format", "json", "--reports", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    failed = [test for test in report["tests"] if test["status"] != "passed"]
    assert not failed and report["max_score"] == 100 and report["score"] == 105  # the bonus comes on top
    assert {tag for test in report["tests"] for tag in test["tags"]} == {
        "shape_math", "augmentation", "build_cnn", "build_cnn_v2", "training", "filters", "bonus"}
    assert (tmp_path / "r" / "training_curve.png").exists() and (tmp_path / "r" / "first_layer_filters.png").exists()


@pytest.mark.slow  # a whole grade, training run or nested pytest: the full tier's (README, Test tiers)
def test_untouched_stubs_score_zero_with_a_clear_report():
    done = run_python("-m", "grader", "grade", "exercises")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Score: 0 / 100" in done.stdout
    assert "build_cnn() is not implemented yet (it raises NotImplementedError)." in done.stdout
    assert "conv_output_size() is not implemented yet" in done.stdout


def test_the_program_keeps_its_exit_code_and_messages_when_it_ends_at_once(tmp_path):
    done = run_python("-m", "grader", "grade", str(tmp_path / "nope.py"))
    assert done.returncode == 2
    assert "grader grade: no such file or folder" in done.stderr


def test_the_program_ends_the_usual_way_while_another_thread_runs():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not cli._may_end_at_once()
    finally:
        stop.set()
        other.join()
    assert cli._may_end_at_once()
