"""`grader calibrate`: re-run the training check's calibration and print (or record) its threshold; record the
expectations the hidden tests derive from the lesson's reference (grader.checker.reference)."""

from grader.options import DATASET_HELP, DATASETS

HELP = "re-run the training check's calibration and print it"
SEEDS_HELP = "seeds to train the reference on (default: %(default)s)"
BROKEN_SEEDS_HELP = "seeds to train each known-broken model on (default: %(default)s)"
OUTPUT_HELP = ("the calibration record to update (default: the lesson folder's calibration.json, the "
               "top-level one for the default lesson; every grade uses its threshold)")
EXPECTATIONS_HELP = ("only record what the hidden tests derive from the lesson's reference in the lesson folder's "
                     "expectations.json (seconds, no training): after an edit of the reference, lesson.toml or the "
                     "checker, so that grades need no Keras before the probe has run")


def add_parser(commands):
    """Add `calibrate` to the command line."""
    from grader.training.calibration import BROKEN_SEEDS, DEFAULT_SEEDS

    parser = commands.add_parser("calibrate", help=HELP)
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=SEEDS_HELP)
    parser.add_argument("--broken-seeds", type=int, default=BROKEN_SEEDS, help=BROKEN_SEEDS_HELP)
    parser.add_argument("--dataset", choices=DATASETS, default="synthetic", help=DATASET_HELP)
    parser.add_argument("--output", help=OUTPUT_HELP)
    parser.add_argument("--expectations", action="store_true", help=EXPECTATIONS_HELP)
    parser.set_defaults(run=from_args)


def from_args(args):
    """Run main with the parsed flags."""
    return main(seeds=args.seeds, broken_seeds=args.broken_seeds, dataset=args.dataset, output=args.output,
                expectations_only=args.expectations)


def main(*, seeds, dataset, output, broken_seeds=None, expectations_only=False):
    """Record the lesson's expectations (unless the calibration goes to another --output), calibrate the training
    check's threshold and print the record; return the exit code."""
    from grader.checker.reference import write_record

    if output is None or expectations_only:
        print(f"expectations recorded in {write_record()}")
    if expectations_only:
        return 0
    from grader.training.calibration import BROKEN_SEEDS, calibrate, print_summary

    record = calibrate(seeds=seeds, dataset=dataset, broken_seeds=broken_seeds or BROKEN_SEEDS, out=output)
    print_summary(record)
    return 0
