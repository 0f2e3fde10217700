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
    return parser


def run(argv=None):
    """Parse the command line and run the subcommand; exit with its code."""
    args = build_parser().parse_args(argv)
    if args.command == "grade":
        code = grade_main(path=args.path, fmt=args.fmt, output=args.output, reports=args.reports,
                          training=args.training, dataset=args.dataset, limits=limits_from(args))
    elif args.command == "calibrate":
        code = calibrate_main(seeds=args.seeds, dataset=args.dataset, output=args.output)
    sys.exit(code)
