"""`grader batch FOLDER`: grade every submission in a folder with warm workers and write the gradebook."""

import sys
from pathlib import Path

from grader import options as grading_options
from grader.options import GradingOptions
from grader.report import FORMATS

HELP = "grade every submission in a folder (one per file or subfolder)"
FOLDER_HELP = "folder with one submission per entry: .py, folder, .ipynb or .zip"
JOBS_HELP = "worker processes grading in parallel, each importing TensorFlow once (default: one per CPU core)"
OUTPUT_HELP = "gradebook CSV to write (default: grades.csv)"
REPORTS_HELP = ("folder for one report folder per submission, REPORTS/<id>/ (the report in every format plus the "
                "training curve and filter grid, PNG)")
FORMAT_HELP = "also print every submission's report on stdout in this format (default: none)"
CACHE_DIR_HELP = ("folder of the training-check cache shared by workers and runs "
                  "(default: ~/.cache/lesson6-grader/training)")
NO_ZYGOTE_HELP = ("start a fresh interpreter for every probe instead of forking it from a zygote that imported "
                  "Keras once (slower; grades are the same)")
NO_CACHE_HELP = "train every submission's model, even when an equivalent one was trained already"


def add_parser(commands):
    """Add `batch` to the command line."""
    parser = commands.add_parser("batch", help=HELP)
    parser.add_argument("folder", help=FOLDER_HELP)
    parser.add_argument("--jobs", type=int, default=None, help=JOBS_HELP)
    parser.add_argument("--output", default="grades.csv", help=OUTPUT_HELP)
    parser.add_argument("--reports", help=REPORTS_HELP)
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default=None, help=FORMAT_HELP)
    parser.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    parser.add_argument("--no-cache", dest="cache", action="store_false", help=NO_CACHE_HELP)
    parser.add_argument("--no-zygote", dest="zygote", action="store_false", help=NO_ZYGOTE_HELP)
    grading_options.add_arguments(parser)
    parser.set_defaults(run=from_args)


def from_args(args):
    """Run main with the parsed flags."""
    options = grading_options.from_args(args, cache=args.cache, verdict_cache=args.cache, cache_dir=args.cache_dir,
                                        zygote=args.zygote)
    return main(folder=args.folder, jobs=args.jobs, output=args.output, reports=args.reports, fmt=args.fmt,
                options=options)


def main(*, folder, jobs=None, output="grades.csv", reports=None, fmt=None, options=GradingOptions()):
    """Grade every submission in a folder with warm workers and write the gradebook; return the exit code."""
    from dataclasses import replace

    from grader.batch import Progress, describe, find_submissions, grade_batch, render_all

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
    if options.cache and options.cache_dir is None:
        from grader.cache import default_directory

        options = replace(options, cache_dir=str(default_directory()))
    try:
        summary = grade_batch(paths, jobs=jobs, options=options, reports=reports, gradebook=output,
                              progress=Progress(sys.stderr))
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
