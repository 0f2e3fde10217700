"""`grader grade PATH`: grade one submission and write its report."""

import sys
from pathlib import Path

from grader import options as grading_options
from grader.options import GradingOptions
from grader.render import FORMATS, render
from grader.store import atomic_write, write_reports

HELP = "grade one submission (.py, folder, .ipynb or .zip)"
PATH_HELP = "the submission: a .py file, a folder, a .ipynb notebook or a .zip"
FORMAT_HELP = "report format: " + ", ".join(FORMATS) + " (default: text)"
OUTPUT_HELP = "write the report to this file instead of stdout"
REPORTS_HELP = "folder for the report in every format plus the training curve and filter grid (PNG)"
NO_SUCH_PATH = ("grader grade: no such file or folder: {path} (expected a .py file, a folder, a .ipynb notebook "
                "or a .zip)")


def add_arguments(parser):
    """Add the flags of `grader grade` (also used to check Gradescope's --grade-args at build time)."""
    parser.add_argument("path", help=PATH_HELP)
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="text", help=FORMAT_HELP)
    parser.add_argument("--output", help=OUTPUT_HELP)
    parser.add_argument("--reports", help=REPORTS_HELP)
    grading_options.add_cache_arguments(parser)
    grading_options.add_arguments(parser)


def add_parser(commands):
    """Add `grade` to the command line."""
    parser = commands.add_parser("grade", help=HELP)
    add_arguments(parser)
    parser.set_defaults(run=from_args)


def from_args(args):
    """Run main with the parsed flags."""
    return main(path=args.path, fmt=args.fmt, output=args.output, reports=args.reports,
                options=grading_options.from_args(args, **grading_options.cache_from_args(args)))


def main(*, path, fmt="text", output=None, reports=None, options=GradingOptions()):
    """Grade one submission and write its report; return the exit code."""
    from grader.grade import SandboxRequired, grade

    if not Path(path).exists():
        print(NO_SUCH_PATH.format(path=path), file=sys.stderr)
        return 2
    options = grading_options.with_default_cache_dir(options)
    print(f"Grading {path} ...", file=sys.stderr)
    try:
        results = grade(path, options, report_dir=reports)
    except SandboxRequired as error:
        print(f"grader grade: {error}", file=sys.stderr)
        return 2
    if reports:
        write_reports(results, reports)
    text = render(results, fmt)
    if output:
        atomic_write(output, text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    print(f"{results.submission}: {results.score:g} / {results.max_score:g} in {results.execution_time:.1f} s",
          file=sys.stderr)
    return 0
