"""Golden outputs: every file the kit writes for a few submissions, pinned byte for byte.

Each folder tests/golden/<case>/ holds what the kit writes for one submission (report.txt, report.json,
report.xml, report.md, report.html: write_reports' folder); tests/golden/batch/ holds what a batch writes for
all of them together (grades.csv through the batch's Gradebook, summary.md and summary.html through
write_summary). The submissions are made by the kit's own test helpers (tests/test_styles.py,
tests/test_mutants.py, tests/test_report.py; a grading error by grader.batch.error_results) and graded in this
process, training off and the verdict cache off, so the grades come from the hidden tests alone. A refactoring
that changes no behaviour leaves every file identical; a change of grade, message, layout or escaping fails
here, naming the first differing line.

Regenerate the files after a change of output made on purpose, and review the diff before committing it:

    GOLDEN_UPDATE=1 pytest tests/test_golden.py
"""

import dataclasses
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.grade import check, probe_submission  # noqa: E402
from grader.options import NO_TRAINING  # noqa: E402
from grader.store import Gradebook, load_results, write_reports, write_summary  # noqa: E402
from grader.worker import GRADING_RAISED, error_results  # noqa: E402
from tests.probe_in_process import probe_in_process  # noqa: E402
from tests.test_mutants import MUTANTS, functions_touched, write_mutant  # noqa: E402
from tests.test_report import with_bonus  # noqa: E402
from tests.test_styles import relu_as_layers, sequential_api, write_modules  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
OPTIONS = dataclasses.replace(NO_TRAINING, verdict_cache=False)  # the hidden tests' own verdicts, every time
REPORT_FILES = ("report.txt", "report.json", "report.xml", "report.md", "report.html")
BATCH_FILES = ("grades.csv", "summary.md", "summary.html")
STYLES = {"style_sequential_api": sequential_api, "style_relu_as_separate_layers": relu_as_layers}
MUTANT_IDS = ("same_padding_floor", "no_random_zoom", "flatten_instead_of_gap", "v2_sigmoid_head",
              "feature_maps_training_true")
CASES = ("reference", *STYLES, *(f"mutant_{name}" for name in MUTANT_IDS), "not_a_submission", "grading_error",
         "hand_built")
MISSING_SUBMISSION = Path("no_such_submission.ipynb")  # relative, so its error message names no temp folder
PNG_PREFIX = "data:image/png;base64,"


def normalise(results):
    """Return results with its genuinely variable fields fixed, so that its outputs compare byte for byte.

    - execution_time: wall seconds of this run (JSON "execution_time", JUnit testsuite time, CSV seconds).
    - each test's seconds: wall seconds of that test (JSON extra_data seconds, JUnit testcase time); kept None
      where unknown, so the absence of a time stays pinned.
    The hand-built case's times are fixed already and stay as they are (they pin the number formatting).
    """
    results.execution_time = 0.0
    for test in results.tests:
        if test.seconds is not None:
            test.seconds = 0.0
    return results


def normalise_text(name, text):
    """Return an output's text with the bytes that vary outside the kit replaced.

    - summary.html's histogram: a matplotlib PNG, whose bytes depend on matplotlib's version and fonts, not
      on the kit; the data: URI is kept, its payload replaced (the histogram's counts are pinned by summary.md).
    """
    if name == "summary.html" and PNG_PREFIX in text:
        head, rest = text.split(PNG_PREFIX, 1)
        return head + PNG_PREFIX + "<png>" + rest[rest.index('"'):]
    return text


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Return {case: GradingResults} for every case, graded in this process."""
    scratch = tmp_path_factory.mktemp("golden")
    reference = probe_in_process(write_modules(scratch / "reference"))
    probes = {"reference": reference}
    for case, make in STYLES.items():
        probes[case] = probe_in_process(make(scratch / case))
    mutants = {mutant.id: mutant for mutant in MUTANTS}
    for name in MUTANT_IDS:
        folder = write_mutant(mutants[name], scratch / name)
        probes[f"mutant_{name}"] = probe_in_process(folder, functions_touched(mutants[name]), reuse=reference)
    probes["not_a_submission"] = probe_submission(MISSING_SUBMISSION, OPTIONS)
    found = {case: normalise(check(probe, submission=case, options=OPTIONS)) for case, probe in probes.items()}
    found["grading_error"] = normalise(error_results("grading_error", GRADING_RAISED.format(
        error="RuntimeError: the probe's pipe closed"), seconds=3.25))
    hand_built = with_bonus(2)
    hand_built.sandbox = [{"name": "rlimits", "held": True}, {"name": "landlock", "held": False,
                                                               "reason": "kernel < 5.13"}]
    found["hand_built"] = hand_built
    return found


def assert_same(expected_folder, written, update=UPDATE):
    """Compare written files with the golden ones (or replace them under GOLDEN_UPDATE=1)."""
    for path in written:
        text = normalise_text(path.name, path.read_bytes().decode("utf-8"))  # bytes: line ends are pinned too
        golden = expected_folder / path.name
        if update:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_bytes(text.encode("utf-8"))
            continue
        assert golden.is_file(), f"{golden} is missing: run GOLDEN_UPDATE=1 pytest tests/test_golden.py"
        expected = golden.read_bytes().decode("utf-8")
        if text != expected:
            pairs = zip(expected.splitlines(), text.splitlines())
            line, (old, new) = next(((n, pair) for n, pair in enumerate(pairs, 1) if pair[0] != pair[1]),
                                    (0, ("(same lines)", "(length differs)")))
            pytest.fail(f"{path.name} of {expected_folder.name} differs from the golden file at line {line}.\n"
                        f"expected: {old!r}\nreceived: {new!r}")


@pytest.mark.parametrize("case", CASES)
def test_reports_match_the_golden_files(case, graded, tmp_path):
    written = write_reports(graded[case], tmp_path / case)
    assert sorted(path.name for path in written) == sorted(REPORT_FILES)
    assert_same(GOLDEN / case, written)


def test_batch_files_match_the_golden_files(graded, tmp_path):
    everyone = [graded[case] for case in CASES]
    gradebook = Gradebook(tmp_path / "grades.csv")
    for results in everyone:
        gradebook.add(results)
    gradebook.close(everyone)
    written = [tmp_path / "grades.csv", *write_summary(everyone, tmp_path)]
    assert sorted(path.name for path in written) == sorted(BATCH_FILES)
    assert_same(GOLDEN / "batch", written)


def test_report_json_reads_back_into_the_same_reports(graded, tmp_path):
    for case in CASES:
        write_reports(graded[case], tmp_path / case)
    read_back = load_results(tmp_path)  # sorted by folder name
    assert [results.submission for results in read_back] == [graded[case].submission for case in sorted(CASES)]
    for case, results in zip(sorted(CASES), read_back):
        assert_same(GOLDEN / case, write_reports(results, tmp_path / "again" / case), update=False)


def test_the_golden_files_cover_every_case():
    if UPDATE:
        pytest.skip("GOLDEN_UPDATE=1 writes the golden files; rerun without it to compare them")
    folders = sorted(path.name for path in GOLDEN.iterdir() if path.is_dir())
    assert folders == sorted([*CASES, "batch"]), "a tests/golden/ folder has no case, or a case has no folder"
