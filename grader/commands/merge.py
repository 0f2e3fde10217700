"""`grader merge SHARD...`: join the shards of a class (`grader batch --shard K/N`) into what one batch writes.

Each shard left a gradebook, its manifest beside it (grades.csv -> grades.shard.json: which shard of how many,
the folder entries it graded and their ids) and, with --reports, one report folder per submission. The merge
checks that every shard of 1..N is there once, puts the rows back in the folder's order, copies the report
folders, and writes the class summary and the LMS imports as `grader batch` does after one run.
"""

import json
import shutil
import sys
from pathlib import Path

HELP = "join the gradebooks and reports of `grader batch --shard K/N` runs into one class's"
SHARDS_HELP = ("a shard's output: the folder holding its gradebook and manifest (grades.csv, grades.shard.json), or "
               "the gradebook's path")
OUTPUT_HELP = "merged gradebook CSV to write (default: grades.csv)"
REPORTS_HELP = "folder to copy every submission's report folder into, with the class summary (default: none)"

USAGE_ERROR = 2
NO_MANIFEST = ("{shard} is not a shard's output: expected a folder with one *.shard.json (written by `grader batch "
               "--shard K/N`) or a gradebook with its .shard.json beside it. Received: {found}")
BAD_MANIFEST = "{path} is not a shard manifest written by `grader batch --shard`: {problem}"
WRONG_SHARDS = "expected shards 1 to {count}, each once. Received: {received}"


class MergeError(ValueError):
    """The shards cannot be merged; the message says what was expected and what was received."""


def add_parser(commands):
    """Add `merge` to the command line."""
    parser = commands.add_parser("merge", help=HELP)
    parser.add_argument("shards", nargs="+", metavar="SHARD", help=SHARDS_HELP)
    parser.add_argument("--output", default="grades.csv", help=OUTPUT_HELP)
    parser.add_argument("--reports", help=REPORTS_HELP)
    from grader.commands.batch import ALLOW_PARTIAL_HELP, CANVAS_HELP, MOODLE_HELP, ROSTER_HELP

    parser.add_argument("--roster", help=ROSTER_HELP.split(" (default")[0])
    parser.add_argument("--canvas", metavar="PATH", help=CANVAS_HELP)
    parser.add_argument("--moodle", metavar="PATH", help=MOODLE_HELP)
    parser.add_argument("--allow-partial", action="store_true", help=ALLOW_PARTIAL_HELP.replace("grading starts",
                                                                                                "merging"))
    parser.set_defaults(run=from_args)


def from_args(args):
    """Run main with the parsed flags."""
    return main(shards=args.shards, output=args.output, reports=args.reports, roster=args.roster, canvas=args.canvas,
                moodle=args.moodle, allow_partial=args.allow_partial)


def _error(message):
    print(f"grader merge: {message}", file=sys.stderr)


def find_manifest(shard):
    """Return the manifest of a shard given as its folder or its gradebook."""
    from grader.shards import SHARD_SUFFIX, shard_manifest_path

    shard = Path(shard)
    if shard.is_dir():
        found = sorted(shard.glob(f"*{SHARD_SUFFIX}"))
        if len(found) == 1:
            return found[0]
        raise MergeError(NO_MANIFEST.format(shard=shard, found=", ".join(path.name for path in found) or "none"))
    path = shard_manifest_path(shard)
    if not path.is_file():
        raise MergeError(NO_MANIFEST.format(shard=shard, found=f"no {path.name}"))
    return path


def read_manifest(path):
    """Return a shard's manifest, its paths made absolute."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        shard, count, total = int(data["shard"]), int(data["of"]), int(data["folder_entries"])
        submissions = [(str(item["entry"]), str(item["id"])) for item in data["submissions"]]
        gradebook = Path(path).parent / data["gradebook"]
        reports = Path(path).parent / data["reports"] if data.get("reports") else None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MergeError(BAD_MANIFEST.format(path=path, problem=error)) from None
    return {"shard": shard, "of": count, "total": total, "submissions": submissions, "gradebook": gradebook,
            "reports": reports, "path": path}


def check_shards(manifests):
    """Raise MergeError unless the manifests are shards 1..N of one class, each once."""
    counts = sorted({manifest["of"] for manifest in manifests})
    received = ", ".join(f"{manifest['shard']}/{manifest['of']} ({manifest['path']})" for manifest in manifests)
    if len(counts) != 1 or sorted(manifest["shard"] for manifest in manifests) != list(range(1, counts[0] + 1)):
        raise MergeError(WRONG_SHARDS.format(count=counts[-1], received=received))
    totals = {manifest["total"] for manifest in manifests}
    if len(totals) != 1:
        raise MergeError(f"the shards saw class folders of different sizes: expected one folder graded by all "
                         f"shards. Received: {sorted(totals)} entries")
    graded, total = sum(len(manifest["submissions"]) for manifest in manifests), totals.pop()
    if graded != total:
        raise MergeError(f"the shards graded {graded} submissions of a folder of {total}: expected "
                         f"every entry once. Received: {received}")


def gather(manifests):
    """Return [(entry, id, row, report_dir)] of every shard, in the folder's order (as one batch grades it)."""
    from grader import exports
    from grader.store import report_folder

    found = []
    for manifest in manifests:
        rows = exports.read_gradebook(manifest["gradebook"])
        if len(rows) != len(manifest["submissions"]):
            raise MergeError(f"the gradebook {manifest['gradebook']} has {len(rows)} rows: expected the "
                             f"{len(manifest['submissions'])} of its manifest {manifest['path']}")
        for (entry, submission), row in zip(manifest["submissions"], rows):
            report_dir = report_folder(manifest["reports"], submission) if manifest["reports"] else None
            found.append((entry, submission, row, report_dir))
    return sorted(found, key=lambda item: item[0])


def results_of(submission, row, report_dir):
    """Return a submission's GradingResults: its report.json, or (an error row without one) its gradebook row."""
    from grader.results import GradingResults
    from grader.store import REPORT_JSON, from_json

    path = report_dir / REPORT_JSON if report_dir else None
    if path and path.is_file():
        return from_json(path.read_text(encoding="utf-8"))
    if row.get("status") == "error":
        return GradingResults(submission=submission, tests=[], execution_time=float(row.get("seconds") or 0),
                              notes=[row["message"]] if row.get("message") else [], status="error")
    expected = path or "a shard run with --reports"
    raise MergeError(f"the class summary needs every submission's report.json: expected {expected} for "
                     f"{submission}. Received: none")


def main(*, shards, output="grades.csv", reports=None, roster=None, canvas=None, moodle=None, allow_partial=False):
    """Merge shard outputs into one gradebook, report folders, class summary and LMS imports; return the exit code."""
    from grader import exports
    from grader.commands.batch import partial_export_message, write_class_files
    from grader.render.gradebook import CSV_FIELDS
    from grader.store import report_folder

    try:
        manifests = [read_manifest(find_manifest(shard)) for shard in shards]
        check_shards(manifests)
        found = gather(manifests)
        students = exports.read_roster(roster) if roster else {}
    except (MergeError, OSError, ValueError) as error:
        _error(str(error))
        return USAGE_ERROR
    ids = [submission for _entry, submission, _row, _report in found]
    for lms, path in ((exports.CANVAS, canvas), (exports.MOODLE, moodle)):  # as `grader batch` refuses them
        problems = exports.export_problems(ids, students, lms) if path else {}
        if problems and not allow_partial:
            _error(partial_export_message(lms, problems, total=len(ids), roster=students))
            return USAGE_ERROR
    rows = [row for _entry, _submission, row, _report in found]
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        exports.write_rows(rows, output, CSV_FIELDS)
    except OSError as error:
        _error(f"could not write the gradebook {output}: {error}")
        return 1
    try:
        results = [results_of(submission, row, report) for _entry, submission, row, report in found]
    except (MergeError, OSError, ValueError) as error:
        _error(f"the class summary was not written: {error}")
        return 1
    if reports:
        try:
            for _entry, submission, _row, report_dir in found:
                target = report_folder(reports, submission)
                if report_dir and report_dir.is_dir() and report_dir.resolve() != target.resolve():
                    shutil.copytree(report_dir, target, dirs_exist_ok=True)
        except OSError as error:
            _error(f"could not copy the reports into {reports}: {error}")
            return 1
    errors = sum(1 for row in rows if row.get("status") == "error")
    print(f"Merged {len(manifests)} shards: {len(rows)} submissions, {errors} errors. Gradebook: {output}",
          file=sys.stderr)
    return write_class_files(results, rows, students, summary_dir=Path(reports) if reports else Path(output).parent,
                             reports=reports, only=False, canvas=canvas, moodle=moodle)
