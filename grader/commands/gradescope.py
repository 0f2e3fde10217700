"""`grader gradescope OUT`: build Gradescope's autograder zip (setup.sh, run_autograder, the kit)."""

HELP = "build Gradescope's autograder zip (setup.sh, run_autograder)"


def add_parser(commands):
    """Add `gradescope` to the command line."""
    from grader.integrations import gradescope

    parser = commands.add_parser("gradescope", help=HELP)
    parser.add_argument("out", help="the zip to write, e.g. autograder.zip")
    parser.add_argument("--kit-source", help=gradescope.KIT_SOURCE_HELP)
    parser.add_argument("--grade-args", default="", help=gradescope.GRADE_ARGS_HELP)
    parser.add_argument("--timeout", type=int, default=gradescope.DEFAULT_TIMEOUT, help=gradescope.TIMEOUT_HELP)
    parser.add_argument("--smoke-submission", help=gradescope.SMOKE_HELP)
    parser.set_defaults(run=from_args)


def from_args(args):
    """Build the zip with the parsed flags."""
    from grader.integrations import gradescope

    return gradescope.gradescope_main(out=args.out, kit_source=args.kit_source, grade_args=args.grade_args,
                                      timeout=args.timeout, smoke_submission=args.smoke_submission)
