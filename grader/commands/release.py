"""`grader release OUT`: write the student repository (stubs, visible tests, workflow, notebook)."""

HELP = "write the student repository: stubs, visible tests, workflow, notebook"


def add_parser(commands):
    """Add `release` to the command line."""
    from grader.integrations import github, release

    parser = commands.add_parser("release", help=HELP)
    parser.add_argument("out", help="an empty folder (or a fresh git clone) to write the release into")
    parser.add_argument("--kit-source", help=release.KIT_SOURCE_HELP)
    parser.add_argument("--grader-repo", default=github.DEFAULT_GRADER_REPO, help=release.GRADER_REPO_HELP)
    parser.add_argument("--grader-ref", default=github.DEFAULT_GRADER_REF, help=release.GRADER_REF_HELP)
    parser.add_argument("--min-score", default=github.DEFAULT_MIN_SCORE, help=release.MIN_SCORE_HELP)
    parser.add_argument("--python", dest="python_version", default=github.DEFAULT_PYTHON, help=release.PYTHON_HELP)
    parser.add_argument("--ci-grade-args", dest="grade_args", default="", help=release.CI_GRADE_ARGS_HELP)
    parser.set_defaults(run=from_args)


def from_args(args):
    """Write the release with the parsed flags."""
    from grader.integrations import release

    return release.release_main(out=args.out, kit_source=args.kit_source, grader_repo=args.grader_repo,
                                grader_ref=args.grader_ref, min_score=args.min_score,
                                python_version=args.python_version, grade_args=args.grade_args)
