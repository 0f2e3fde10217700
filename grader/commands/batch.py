"""`grader batch FOLDER`: grade every submission in a folder with warm workers and write the gradebook.

After the gradebook come the class summary (summary.html and summary.md, into --reports or next to the
gradebook) and, when asked, the Canvas and Moodle imports. Students are named by --roster, or by the
submission_metadata.yml of a Gradescope export folder. --only re-grades some students into an existing gradebook.
"""

import sys
from pathlib import Path

from grader import options as grading_options
from grader.options import GradingOptions
from grader.wording import plural

HELP = "grade every submission in a folder (one per file or subfolder)"
FOLDER_HELP = ("folder with one submission per entry: .py, folder, .ipynb or .zip (a Gradescope "
               "'Download Submissions' export folder works too)")
JOBS_HELP = "worker processes grading in parallel, each importing TensorFlow once (default: one per CPU core)"
OUTPUT_HELP = "gradebook CSV to write (default: grades.csv)"
REPORTS_HELP = ("folder for one report folder per submission, REPORTS/<id>/ (the report in every format, the "
                "student's HTML feedback page and the training pictures, PNG), and the class summary")
FORMAT_HELP = "also print every submission's report on stdout in this format (default: none)"
NO_ZYGOTE_HELP = ("start a fresh interpreter for every probe instead of forking it from a zygote that imported "
                  "Keras once (slower; grades are the same)")
ROSTER_HELP = ("CSV mapping submission ids to students: a header with `id` and any of name, email, sis_id, "
               "canvas_id, sis_login_id, section (default: the submission_metadata.yml of a Gradescope export)")
ONLY_HELP = ("grade only these submission ids (with or without extension) and merge them into the existing "
             "gradebook --output; the summary is rebuilt from every REPORTS/<id>/report.json")
CANVAS_HELP = "also write Canvas's gradebook import CSV here (students from the roster)"
SHARD_HELP = ("grade only shard K of N (K/N, e.g. 2/4): the entries whose name hashes to it, so N machines grade "
              "a class between them; it writes OUTPUT's manifest (grades.csv -> grades.shard.json) for `grader merge`")
SLOTS_HELP = ("training runs at once (default: 0, no limit; 1 makes them take turns, each on every core as in "
              "`grader grade`, while the other workers wait or probe)")
MOODLE_HELP = "also write Moodle's grade import CSV here (students from the roster, matched by email or ID number)"
ALLOW_PARTIAL_HELP = ("write the Canvas or Moodle import even where it would leave students out (no roster, ids the "
                      "roster lacks, a roster value the LMS cannot match); without it such an import is refused "
                      "before grading starts")

USAGE_ERROR = 2
PARTIAL_EXPORT = ("the {lms} import would leave out {count} of {total} submissions, so nothing was graded. "
                  "Expected --roster CSV naming every submission id, with values {lms} can match on, or "
                  "--allow-partial to write the import without them. Received: {reasons}")
NO_ROSTER = "no roster (neither --roster nor a Gradescope export folder's submission_metadata.yml)"
REASONS_SHOWN = 5


def add_parser(commands):
    """Add `batch` to the command line."""
    from grader.render.batch import BATCH_FORMATS

    parser = commands.add_parser("batch", help=HELP)
    parser.add_argument("folder", help=FOLDER_HELP)
    parser.add_argument("--jobs", type=int, default=None, help=JOBS_HELP)
    parser.add_argument("--output", default="grades.csv", help=OUTPUT_HELP)
    parser.add_argument("--reports", help=REPORTS_HELP)
    parser.add_argument("--format", dest="fmt", choices=BATCH_FORMATS, default=None, help=FORMAT_HELP)
    grading_options.add_cache_arguments(parser)
    parser.add_argument("--roster", help=ROSTER_HELP)
    parser.add_argument("--only", nargs="+", metavar="ID", help=ONLY_HELP)
    parser.add_argument("--canvas", metavar="PATH", help=CANVAS_HELP)
    parser.add_argument("--moodle", metavar="PATH", help=MOODLE_HELP)
    parser.add_argument("--allow-partial", action="store_true", help=ALLOW_PARTIAL_HELP)
    parser.add_argument("--no-zygote", dest="zygote", action="store_false", help=NO_ZYGOTE_HELP)
    parser.add_argument("--training-slots", type=int, default=None, help=SLOTS_HELP)
    parser.add_argument("--shard", metavar="K/N", help=SHARD_HELP)
    grading_options.add_arguments(parser)
    parser.set_defaults(run=from_args)


def from_args(args):
    """Run main with the parsed flags."""
    options = grading_options.from_args(args, **grading_options.cache_from_args(args), zygote=args.zygote)
    return main(folder=args.folder, jobs=args.jobs, output=args.output, reports=args.reports, fmt=args.fmt,
                options=options, roster=args.roster, only=args.only, canvas=args.canvas, moodle=args.moodle,
                allow_partial=args.allow_partial, training_slots=args.training_slots, shard=args.shard)


def _error(message):
    print(f"grader batch: {message}", file=sys.stderr)


def main(*, folder, jobs=None, output="grades.csv", reports=None, fmt=None, options=GradingOptions(), roster=None,
         only=None, canvas=None, moodle=None, allow_partial=False, training_slots=None, shard=None):
    """Grade every submission in a folder with warm workers, write the gradebook, summary and exports."""
    from grader import exports
    from grader.batch import TRAINING_SLOTS, batch_ids, find_submissions, grade_batch
    from grader.render.batch import Progress, describe, render_all
    from grader.render.gradebook import csv_row
    from grader.render.summary import HTML_NAME, MARKDOWN_NAME
    from grader.results import Status
    from grader.shards import parse_shard, shard_manifest_path, shard_of, write_shard_manifest

    if not Path(folder).is_dir():
        _error(f"not a folder: {folder} (expected a folder with one submission per entry)")
        return USAGE_ERROR
    if jobs is not None and jobs < 1:
        _error(f"--jobs must be at least 1. Received: jobs={jobs}")
        return USAGE_ERROR
    if training_slots is not None and training_slots < 0:
        _error(f"--training-slots must be 0 (no limit) or more. Received: training_slots={training_slots}")
        return USAGE_ERROR
    try:
        part = parse_shard(shard) if shard else None
    except ValueError as error:
        _error(str(error))
        return USAGE_ERROR
    if part and only:
        _error("--shard and --only do not go together: expected one of them. Received: both")
        return USAGE_ERROR
    from grader.publish import calibration_problem

    problem = calibration_problem(options)
    if problem:
        _error(problem)
        return USAGE_ERROR
    summary_dir = Path(reports) if reports else Path(output).parent
    outputs = (output, reports, canvas, moodle, summary_dir / HTML_NAME, summary_dir / MARKDOWN_NAME,
               shard_manifest_path(output))
    paths = find_submissions(folder, exclude=outputs)
    if not paths:
        _error(f"no submissions in {folder}")
        return USAGE_ERROR
    try:
        students = exports.read_roster(roster) if roster else (exports.gradescope_roster(folder) or {})
        ids = dict(zip(paths, batch_ids(paths)))  # the whole folder's ids, also when grading a few
        if only:
            paths = exports.select_submissions(paths, only, folder)
    except (OSError, ValueError) as error:
        _error(str(error))
        return USAGE_ERROR
    clash = _clash_with_a_report_folder((output, canvas, moodle), reports, ids.values())
    if clash:
        _error(clash)
        return USAGE_ERROR
    for lms, path in ((exports.CANVAS, canvas), (exports.MOODLE, moodle)):
        problems = exports.export_problems(ids.values(), students, lms) if path else {}
        if problems and not allow_partial:
            _error(partial_export_message(lms, problems, total=len(ids), roster=students))
            return USAGE_ERROR
    total = len(paths)
    if part:
        paths = [path for path in paths if shard_of(path.name, part[1]) == part[0]]
    options = grading_options.with_default_cache_dir(options)
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)  # --output s1/grades.csv on a fresh runner
        summary = grade_batch(paths, jobs=jobs, options=options, reports=reports, gradebook=None if only else output,
                              progress=Progress(sys.stderr), ids=[ids[path] for path in paths],
                              training_slots=TRAINING_SLOTS if training_slots is None else training_slots)
        rows = (exports.merge_gradebook(output, summary.results) if only
                else [csv_row(results) for results in summary.results])
    except (OSError, ValueError) as error:
        _error(f"could not write the gradebook {output}: {error}")
        return 1
    if part:
        try:
            write_shard_manifest(output, shard=part[0], count=part[1], total=total, reports=reports,
                                 graded=[(path.name, ids[path]) for path in paths])
        except OSError as error:
            _error(f"could not write the shard's manifest beside {output}: {error}")
            return 1
    if fmt:
        sys.stdout.write(render_all(summary.results, fmt))
    errors = [results for results in summary.results if results.status == Status.ERROR]
    for results in errors:
        print(f"  {describe(results)}", file=sys.stderr)
    count = len(summary.results)
    print(f"Graded {plural(count, 'submission')} in {summary.seconds:.1f} s ({summary.seconds / max(count, 1):.1f} s "
          f"each, {plural(summary.workers_started, 'worker')} started); training runs: {summary.trained} done, "
          f"{summary.reused} reused; {plural(len(errors), 'error')}. Gradebook: {output}", file=sys.stderr)
    if summary.phases:
        print(summary.phase_line(), file=sys.stderr)
    return write_class_files(summary.results, rows, students, summary_dir=summary_dir, reports=reports,
                             only=bool(only), canvas=canvas, moodle=moodle)


def write_class_files(results, rows, students, *, summary_dir, reports, only, canvas, moodle) -> int:
    """Write the class summary and the LMS imports after a batch; return the exit code."""
    from grader import exports
    from grader.store import load_results, write_summary

    code = 0
    try:
        if only and not reports:
            _error("the class summary was not rebuilt: --only re-grades a few students, and the summary of the "
                   "whole class is rebuilt from REPORTS/<id>/report.json. Expected --reports REPORTS as in the "
                   "first run. Received: no --reports")
        else:
            everyone = load_results(reports) if only else results
            html_path, _ = write_summary(everyone, summary_dir, names=exports.roster_names(students))
            print(f"Class summary: {html_path}", file=sys.stderr)
    except (OSError, ValueError) as error:
        _error(f"could not write the class summary into {summary_dir}: {error}")
        code = 1
    graded = [float(row["max_score"]) for row in rows if row.get("status") != "error"]
    writers = ((canvas, exports.CANVAS, lambda path: exports.write_canvas_csv(
                   rows, students, path, points_possible=max(graded) if graded else None)),
               (moodle, exports.MOODLE, lambda path: exports.write_moodle_csv(rows, students, path)))
    for path, lms, write in writers:
        if not path:
            continue
        try:
            missing = write(path)
        except OSError as error:
            _error(f"could not write the {lms} import {path}: {error}")
            code = 1
            continue
        print(f"{lms} import: {path}", file=sys.stderr)
        if missing:  # only with --allow-partial: without it, main refused before grading
            _error(f"{plural(len(missing), 'submission')} {'is' if len(missing) == 1 else 'are'} not in the {lms} "
                   f"import {path} (--allow-partial): " + _reasons(missing, students))
    return code


def _clash_with_a_report_folder(files, reports, submission_ids) -> str | None:
    """Return why a class file would take a student's report folder's place in --reports, or None."""
    from grader.store import folder_name

    if not reports:
        return None
    folders = {folder_name(key) for key in submission_ids}
    for path in filter(None, files):
        if Path(path).parent.resolve() == Path(reports).resolve() and Path(path).name in folders:
            return (f"{path} is also the report folder of the submission {Path(path).name!r} in --reports. "
                    f"Expected a class file outside --reports or with another name. Received: {path}")
    return None


def partial_export_message(lms, problems, *, total, roster) -> str:
    """Return the one message that refuses an LMS import which would leave students out."""
    return PARTIAL_EXPORT.format(lms=lms, count=len(problems), total=total, reasons=_reasons(problems, roster))


def _reasons(problems, roster) -> str:
    """Return the first few reasons a submission is left out of an import, and how many more there are."""
    if not roster:
        return NO_ROSTER
    shown = list(problems.values())[:REASONS_SHOWN]
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more else "")
