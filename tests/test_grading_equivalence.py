"""The speed-ups never change a grade: the probe zygote, the verdict cache and the training cache give the results
a fresh probe child and a full run of every hidden test give."""

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.class_folder import make_class, single_file
from benchmarks.class_of_1000 import MISTAKES
from grader.grade import Grader, check, probe_submission
from grader.options import NO_TRAINING
from grader.sandbox.zygote import Zygote

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Correct styles (the same network spelled differently) and single mistakes, as a class hands them in.
STYLES = ("bob.py", "carol.py", "frank.py", "grace", "heidi.py", "judy.py")
EXTRA_MISTAKES = ("vertical_flips",)


def same_uid(layers):
    """Return the sandbox layers with the probe's uid left out: each grading process (a zygote too) has its own."""
    return [{**layer, "reason": re.sub(r"uid \d+", "uid N", layer["reason"])} for layer in layers]


def outcomes(probe):
    """Return everything of a probe result that reaches a grade or a report (not its timings)."""
    return {"import": (probe.import_status, probe.import_message), "isolation": same_uid(probe.isolation),
            "outcomes": {name: (o.status, o.value, o.message) for name, o in sorted(probe.outcomes.items())}}


def verdicts(results):
    """Return the graded content of results: each test's name, part, points, status and message."""
    return [(t.name, t.part, t.score, t.max_score, t.status, t.output) for t in results.tests]


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    paths = make_class(folder, STYLES)
    for name in EXTRA_MISTAKES:
        path = folder / f"{name}.py"
        path.write_text(single_file(MISTAKES[name]))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def probes(class_folder):
    """Probe every submission twice: in a fresh child and in a child forked from a zygote."""
    zygote = Zygote()
    try:
        found = {path.name: (probe_submission(path, NO_TRAINING), probe_submission(path, NO_TRAINING, zygote))
                 for path in class_folder}
        assert zygote.alive(), "the zygote died while probing the class"
    finally:
        zygote.close()
    return found


def test_a_zygote_child_reports_what_a_fresh_child_reports(probes):
    for name, (fresh, forked) in probes.items():
        assert outcomes(forked) == outcomes(fresh), name


def test_a_zygote_child_gets_every_isolation_layer_a_fresh_child_gets(probes):
    fresh, forked = probes["bob.py"]
    assert [layer["held"] for layer in forked.isolation] == [layer["held"] for layer in fresh.isolation]
    assert any(layer["held"] and layer["name"] != "rlimits" for layer in forked.isolation)


def test_cached_verdicts_equal_a_full_run_of_the_hidden_tests(probes, tmp_path):
    options = replace(NO_TRAINING, cache_dir=str(tmp_path))
    full = {name: check(fresh, submission=name, options=replace(NO_TRAINING, verdict_cache=False))
            for name, (fresh, _forked) in probes.items()}
    grader = Grader(options)  # one per process, as in a batch worker: its verdict cache is shared
    cached = {name: grader.check(forked, submission=name) for name, (_fresh, forked) in probes.items()}
    assert grader.verdicts.hits > 0, "expected the correct styles to share cached verdicts"
    assert {name: verdicts(results) for name, results in cached.items()} == {
        name: verdicts(results) for name, results in full.items()}
    best = cached["bob.py"].score
    assert cached["carol.py"].score == cached["frank.py"].score == best
    for name in ("grace", "heidi.py", "judy.py", "vertical_flips.py"):
        assert cached[name].score < best, name


def assert_same_pictures(results, expected):
    """Assert that two GradingResults drew the same pictures (the training curve draws history and accuracy), byte for
    byte, and that there are some."""
    assert sorted(results.artifacts) == sorted(expected.artifacts) and expected.artifacts, "expected the pictures"
    for name, picture in expected.artifacts.items():
        assert Path(results.artifacts[name]).read_bytes() == Path(picture).read_bytes(), (results.submission, name)


@pytest.fixture(scope="module")
def concurrent_batch(class_folder, tmp_path_factory):
    """Grade two distinct networks with two workers and the default training slots (both train at once), writing a
    training cache and reports; grade each again alone with `grade`, no cache, with its reports. Return (summary,
    alone, cache folder)."""
    from grader.batch import grade_batch
    from grader.grade import grade
    from grader.options import GradingOptions

    folder = tmp_path_factory.mktemp("concurrent")
    paths = [path for path in class_folder if path.name in ("grace", "heidi.py")]  # no Rescaling; softmax
    summary = grade_batch(paths, jobs=2, options=GradingOptions(cache_dir=str(folder / "cache")),
                          reports=folder / "reports")
    alone = [grade(path, GradingOptions(cache=False, verdict_cache=False), report_dir=folder / "alone" / path.name)
             for path in paths]
    return summary, alone, folder / "cache"


@pytest.mark.slow
def test_a_batch_whose_trainings_run_at_once_grades_as_grade_does_one_by_one(concurrent_batch):
    """Two workers, two distinct networks, no slot to wait for: both train at once, each as it would alone, to the
    bit (the training pictures draw the run's history and held-out accuracy)."""
    summary, alone, _cache = concurrent_batch
    assert summary.trained == 2 and summary.phases["training"] > 0, summary
    assert summary.phases["waiting for a training slot"] < 0.1, summary  # nothing to wait for
    assert [verdicts(results) for results in summary.results] == [verdicts(results) for results in alone]
    for batch, own in zip(summary.results, alone):
        assert any(test.part == "training" for test in own.tests)
        assert_same_pictures(batch, own)


@pytest.mark.slow
def test_the_training_cache_gives_the_training_check_s_own_verdict(probes, concurrent_batch, tmp_path, monkeypatch):
    """What the batch stored is reused whole: the training check's verdict (no pytest, no training) and its pictures
    equal those of `grade` without a cache and of the batch that trained."""
    import grader.checker.run
    from grader.options import GradingOptions

    summary, alone, cache = concurrent_batch
    probe, _forked = probes["grace"]

    def no_pytest(*args, **kwargs):
        raise AssertionError("expected every verdict, the training check's included, from the caches")

    monkeypatch.setattr(grader.checker.run, "run_hidden_tests", no_pytest)
    reused = check(probe, submission="grace", options=GradingOptions(cache_dir=str(cache)),
                   report_dir=tmp_path / "reused")
    batch = summary.results[0]
    assert verdicts(reused) == verdicts(alone[0]) == verdicts(batch)
    assert "training" in {test.part for test in reused.tests}
    assert_same_pictures(reused, batch)
