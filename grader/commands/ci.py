"""`grader ci PATH`: grade a repository in GitHub Actions (step summary, Classroom result, JUnit, exit code)."""

import argparse

from grader import options as grading_options

HELP = "grade a repository in GitHub Actions: step summary, Classroom result, JUnit"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `ci` to the command line."""
    from grader.integrations import github

    parser = commands.add_parser("ci", help=HELP)
    parser.add_argument("path", help="the repository (or any submission) to grade")
    parser.add_argument("--min-score", type=github.min_score_type, default="0", help=github.MIN_SCORE_HELP)
    parser.add_argument("--junit", help=github.JUNIT_HELP)
    parser.add_argument("--json", dest="json_path", help=github.JSON_HELP)
    grading_options.add_cache_arguments(parser)
    grading_options.add_arguments(parser)
    parser.set_defaults(run=from_args)


def from_args(args: argparse.Namespace) -> int:
    """Run the grading step with the parsed flags."""
    from grader.integrations import github

    return github.ci_main(path=args.path, min_score=args.min_score, junit=args.junit, json_path=args.json_path,
                          options=grading_options.from_args(args, **grading_options.cache_from_args(args)))
