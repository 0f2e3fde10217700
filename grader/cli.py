"""The instructor's command line. Thin: it parses flags and forwards them to keyword-only main functions.

Only the report goes to stdout (or --output); logs and errors go to stderr. `grader grade` exits 0
whenever it produced a report, whatever the score, and 2 when it was called wrongly.
"""

import argparse
import sys
from pathlib import Path

from grader.report import FORMATS, SUFFIXES

FORMAT_HELP = "report format: " + ", ".join(FORMATS) + " (default: text)"
REPORTS_HELP = "folder for the report in every format plus the training curve and filter grid (PNG)"
TRAINING_HELP = "skip the training check (its tests are left out of the score)"
DATASET_HELP = "data set for the training check: synthetic (default, made by the kit) or cifar10 (Keras cache)"
JOBS_HELP = "worker processes grading in parallel, each importing TensorFlow once (default: one per CPU core)"
CACHE_DIR_HELP = ("folder of the training-check cache shared by workers and runs "
                  "(default: ~/.cache/lesson6-grader/training)")
NO_CACHE_HELP = "train every submission's model, even when an equivalent one was trained already"
LIMIT_HELPS = {
    "import_seconds": "seconds allowed to import the submission (default: %(default)s)",
    "function_seconds": "seconds allowed to each function call in the submission (default: %(default)s)",
    "total_seconds": "seconds allowed to the whole probe of one submission (default: %(default)s)",
    "memory_gib": "memory limit of the submission's process in GiB (default: %(default)s)",
}


def add_limit_options(parser):
    """Add the sandbox limits, with their defaults, to a subcommand."""
    from grader.probe import Limits

    defaults = Limits()
    parser.add_argument("--import-timeout", dest="import_seconds", type=float, default=defaults.import_seconds,
                        help=LIMIT_HELPS["import_seconds"])
    parser.add_argument("--function-timeout", dest="function_seconds", type=float,
                        default=defaults.function_seconds, help=LIMIT_HELPS["function_seconds"])
    parser.add_argument("--total-timeout", dest="total_seconds", type=float, default=defaults.total_seconds,
                        help=LIMIT_HELPS["total_seconds"])
    parser.add_argument("--memory", dest="memory_gib", type=float, default=defaults.memory_bytes / 2**30,
                        help=LIMIT_HELPS["memory_gib"])


def limits_from(args):
    """Return the Limits the flags ask for."""
    from grader.probe import Limits

    return Limits(import_seconds=args.import_seconds, function_seconds=args.function_seconds,
                  total_seconds=args.total_seconds, memory_bytes=int(args.memory_gib * 2**30))


def write_reports(results, folder):
    """Write the results in every format into folder; return the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = folder / f"report{SUFFIXES[fmt]}"
        path.write_text(results.render(fmt), encoding="utf-8")
        paths.append(path)
    return paths


def grade_main(*, path, fmt="text", output=None, reports=None, training=True, dataset="synthetic", limits=None):
    """Grade one submission and write its report; return the exit code."""
    from grader.grade import grade

    if not Path(path).exists():
        print(f"grader grade: no such file or folder: {path} (expected a .py file, a folder, a .ipynb notebook "
              f"or a .zip)", file=sys.stderr)
        return 2
    print(f"Grading {path} ...", file=sys.stderr)
    results = grade(path, limits=limits, training=training, dataset=dataset, report_dir=reports)
    if reports:
        write_reports(results, reports)
    text = results.render(fmt)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    print(f"{results.submission}: {results.score:g} / {results.max_score:g} in {results.execution_time:.1f} s",
          file=sys.stderr)
    return 0


def calibrate_main(*, seeds, dataset, output):
    """Calibrate the training check's threshold and print the record; return the exit code."""
    from grader.training.calibration import calibrate, print_summary

    print_summary(calibrate(seeds=seeds, dataset=dataset, out=output))
    return 0


def batch_main(*, folder, jobs=None, output="grades.csv", reports=None, fmt=None, training=True,
               dataset="synthetic", limits=None, cache=True, cache_dir=None):
    """Grade every submission in a folder with warm workers and write the gradebook; return the exit code."""
    from grader.batch import BatchOptions, Progress, describe, find_submissions, grade_batch, render_all
    from grader.report import write_csv

    if not Path(folder).is_dir():
        print(f"grader batch: not a folder: {folder} (expected a folder with one submission per entry)",
              file=sys.stderr)
        return 2
    if jobs is not None and jobs < 1:
        print(f"grader batch: --jobs must be at least 1. Received: jobs={jobs}", file=sys.stderr)
        return 2
    paths = find_submissions(folder, exclude=(output, reports))
    if not paths:
        print(f"grader batch: no submissions in {folder}", file=sys.stderr)
        return 2
    if cache and cache_dir is None:
        from grader.cache import default_directory

        cache_dir = default_directory()
    options = BatchOptions(limits=limits, training=training, dataset=dataset, reports=reports, cache=cache,
                           cache_dir=str(cache_dir) if cache and cache_dir else None)
    summary = grade_batch(paths, jobs=jobs, options=options, progress=Progress(sys.stderr))
    try:
        write_csv(summary.results, output)
    except OSError as error:
        print(f"grader batch: could not write the gradebook {output}: {error}", file=sys.stderr)
        return 1
    if fmt:
        sys.stdout.write(render_all(summary.results, fmt))
    errors = [results for results in summary.results if results.status == "error"]
    for results in errors:
        print(f"  {describe(results)}", file=sys.stderr)
    count = len(summary.results)
    print(f"Graded {count} submissions in {summary.seconds:.1f} s ({summary.seconds / count:.1f} s each, "
          f"{summary.workers_started} workers started); training runs: {summary.trained} done, "
          f"{summary.reused} reused; {len(errors)} errors. Gradebook: {output}", file=sys.stderr)
    return 0


def add_integration_commands(commands):
    """Add the subcommands that fit the kit into the course: ci, gradescope, release."""
    from grader.integrations import github, gradescope, release

    ci = commands.add_parser("ci", help="grade a repository in GitHub Actions: step summary, Classroom result, JUnit")
    ci.add_argument("path", help="the repository (or any submission) to grade")
    ci.add_argument("--min-score", type=github.min_score_type, default="0", help=github.MIN_SCORE_HELP)
    ci.add_argument("--junit", help=github.JUNIT_HELP)
    ci.add_argument("--json", dest="json_path", help=github.JSON_HELP)
    ci.add_argument("--no-training", dest="training", action="store_false", help=TRAINING_HELP)
    ci.add_argument("--dataset", choices=("synthetic", "cifar10"), default="synthetic", help=DATASET_HELP)
    add_limit_options(ci)

    zipped = commands.add_parser("gradescope", help="build Gradescope's autograder zip (setup.sh, run_autograder)")
    zipped.add_argument("out", help="the zip to write, e.g. autograder.zip")
    zipped.add_argument("--kit-source", help=gradescope.KIT_SOURCE_HELP)
    zipped.add_argument("--grade-args", default="", help=gradescope.GRADE_ARGS_HELP)
    zipped.add_argument("--timeout", type=int, default=gradescope.DEFAULT_TIMEOUT, help=gradescope.TIMEOUT_HELP)

    student = commands.add_parser("release", help="write the student repository: stubs, visible tests, workflow, "
                                                  "notebook")
    release.add_arguments(student)


def build_parser():
    """Return the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="grader", description="Grade 'Lesson 6 - CNNs in Keras' submissions.")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade one submission (.py, folder, .ipynb or .zip)")
    grade.add_argument("path", help="the submission: a .py file, a folder, a .ipynb notebook or a .zip")
    grade.add_argument("--format", dest="fmt", choices=FORMATS, default="text", help=FORMAT_HELP)
    grade.add_argument("--output", help="write the report to this file instead of stdout")
    grade.add_argument("--reports", help=REPORTS_HELP)
    grade.add_argument("--no-training", dest="training", action="store_false", help=TRAINING_HELP)
    grade.add_argument("--dataset", choices=("synthetic", "cifar10"), default="synthetic", help=DATASET_HELP)
    add_limit_options(grade)

    calibrate = commands.add_parser("calibrate", help="re-run the training check's calibration and print it")
    calibrate.add_argument("--seeds", type=int, default=20, help="seeds to train the reference on (default: 20)")
    calibrate.add_argument("--dataset", choices=("synthetic", "cifar10"), default="synthetic", help=DATASET_HELP)
    calibrate.add_argument("--output", help="write the calibration record here (default: print only)")
    add_integration_commands(commands)
    batch = commands.add_parser("batch", help="grade every submission in a folder (one per file or subfolder)")
    batch.add_argument("folder", help="folder with one submission per entry: .py, folder, .ipynb or .zip")
    batch.add_argument("--jobs", type=int, default=None, help=JOBS_HELP)
    batch.add_argument("--output", default="grades.csv", help="gradebook CSV to write (default: grades.csv)")
    batch.add_argument("--reports", help="folder for one report folder per submission, REPORTS/<id>/ (" +
                       REPORTS_HELP + ")")
    batch.add_argument("--format", dest="fmt", choices=FORMATS, default=None,
                       help="also print every submission's report on stdout in this format (default: none)")
    batch.add_argument("--no-training", dest="training", action="store_false", help=TRAINING_HELP)
    batch.add_argument("--dataset", choices=("synthetic", "cifar10"), default="synthetic", help=DATASET_HELP)
    batch.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    batch.add_argument("--no-cache", dest="cache", action="store_false", help=NO_CACHE_HELP)
    add_limit_options(batch)
    return parser


def run(argv=None):
    """Parse the command line and run the subcommand; exit with its code."""
    args = build_parser().parse_args(argv)
    if args.command == "grade":
        code = grade_main(path=args.path, fmt=args.fmt, output=args.output, reports=args.reports,
                          training=args.training, dataset=args.dataset, limits=limits_from(args))
    elif args.command == "calibrate":
        code = calibrate_main(seeds=args.seeds, dataset=args.dataset, output=args.output)
    elif args.command == "ci":
        from grader.integrations.github import ci_main

        code = ci_main(path=args.path, min_score=args.min_score, junit=args.junit, json_path=args.json_path,
                       training=args.training, dataset=args.dataset, limits=limits_from(args))
    elif args.command == "gradescope":
        from grader.integrations.gradescope import gradescope_main

        code = gradescope_main(out=args.out, kit_source=args.kit_source, grade_args=args.grade_args,
                               timeout=args.timeout)
    elif args.command == "release":
        from grader.integrations import release

        code = release.release_main(**release.main_arguments(args))
    elif args.command == "batch":
        code = batch_main(folder=args.folder, jobs=args.jobs, output=args.output, reports=args.reports,
                          fmt=args.fmt, training=args.training, dataset=args.dataset, limits=limits_from(args),
                          cache=args.cache, cache_dir=args.cache_dir)
    sys.exit(code)
