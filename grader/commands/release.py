"""`grader release OUT`: write the student repository (stubs, visible tests, workflow, notebook), and on request
the instructor's class-grading workflow."""

HELP = "write the student repository: stubs, visible tests, workflow, notebook"


def add_parser(commands):
    """Add `release` to the command line."""
    from grader.integrations import release

    parser = commands.add_parser("release", help=HELP)
    release.add_arguments(parser)
    parser.set_defaults(run=from_args)


def from_args(args):
    """Write the release with the parsed flags."""
    from grader.integrations import release

    return release.release_main(**release.main_arguments(args))
