"""Grade one submission and publish it: the one path `grader grade` and `grader ci` share.

Both commands check the path, give the caches their default folder, grade, refuse a run the sandbox could not
hold when --require-sandbox asks for one, and write the report folder; only where the results go next differs
(stdout or a file for `grade`, GitHub's step summary and outputs for `ci`), and that is the publish callback.
"""

import sys
from collections.abc import Callable
from pathlib import Path

from grader import options as grading_options
from grader.options import GradingOptions
from grader.results import GradingResults
from grader.store import write_reports

NO_SUCH_PATH = ("grader {command}: no such file or folder: {path} (expected a .py file, a folder, a .ipynb "
                "notebook or a .zip)")


def calibration_problem(options: GradingOptions) -> str:
    """Return why the training check cannot run on the recorded calibration ('' if it can, or training is off)."""
    if not options.training:
        return ""
    from grader.training.check import calibration_problem as problem

    return problem(options.dataset)


def grade_and_publish(*, command: str, path: str | Path, options: GradingOptions,
                      publish: Callable[[GradingResults], int], reports: str | Path | None = None,
                      submission: str | None = None) -> int:
    """Grade the submission at path, write its report folder, hand the results to publish; return the exit code.

    command: the command's name, for its messages. submission: the id in the reports (default: path's name).
    Returns 2 without grading when path does not exist or the sandbox --require-sandbox asks for is missing.
    """
    from grader.grade import filtered_stderr

    with filtered_stderr():  # no TensorFlow start-up line (cuInit on a machine without a GPU), as in a batch
        return _grade_and_publish(command=command, path=path, options=options, publish=publish, reports=reports,
                                  submission=submission)


def _grade_and_publish(*, command: str, path: str | Path, options: GradingOptions,
                       publish: Callable[[GradingResults], int], reports: str | Path | None,
                       submission: str | None) -> int:
    """Do grade_and_publish's work, its stderr already filtered."""
    from grader.grade import SandboxRequired, grade

    if not Path(path).exists():
        print(NO_SUCH_PATH.format(command=command, path=path), file=sys.stderr)
        return 2
    problem = calibration_problem(options)
    if problem:
        print(f"grader {command}: {problem}", file=sys.stderr)
        return 2
    options = grading_options.with_default_cache_dir(options)
    print(f"Grading {path} ...", file=sys.stderr)
    try:
        results = grade(path, options, report_dir=reports, submission=submission)
    except SandboxRequired as error:
        print(f"grader {command}: {error}", file=sys.stderr)
        return 2
    if reports:
        write_reports(results, reports)
    return publish(results)
