"""`grader calibrate`: re-run the training check's calibration and print (or record) its threshold."""

from grader.options import DATASET_HELP, DATASETS

HELP = "re-run the training check's calibration and print it"
SEEDS_HELP = "seeds to train the reference on (default: %(default)s)"
BROKEN_SEEDS_HELP = "seeds to train each known-broken model on (default: %(default)s)"
OUTPUT_HELP = ("the calibration record to update (default: the lesson folder's calibration.json, the "
               "top-level one for the default lesson; every grade uses its threshold)")


def add_parser(commands):
    """Add `calibrate` to the command line."""
    from grader.training.calibration import BROKEN_SEEDS, DEFAULT_SEEDS

    parser = commands.add_parser("calibrate", help=HELP)
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=SEEDS_HELP)
    parser.add_argument("--broken-seeds", type=int, default=BROKEN_SEEDS, help=BROKEN_SEEDS_HELP)
    parser.add_argument("--dataset", choices=DATASETS, default="synthetic", help=DATASET_HELP)
    parser.add_argument("--output", help=OUTPUT_HELP)
    parser.set_defaults(run=from_args)


def from_args(args):
    """Run main with the parsed flags."""
    return main(seeds=args.seeds, broken_seeds=args.broken_seeds, dataset=args.dataset, output=args.output)


def main(*, seeds, dataset, output, broken_seeds=None):
    """Calibrate the training check's threshold and print the record; return the exit code."""
    from grader.training.calibration import BROKEN_SEEDS, calibrate, print_summary

    record = calibrate(seeds=seeds, dataset=dataset, broken_seeds=broken_seeds or BROKEN_SEEDS, out=output)
    print_summary(record)
    return 0
