"""The instructor's command line: it only gathers the commands of grader/commands/ into one parser.

Each command owns its flags and its keyword-only main. Only the report goes to stdout (or --output); logs
and errors go to stderr. `grader grade` exits 0 whenever it produced a report, whatever the score, and 2 when
it was called wrongly.
"""

import argparse
import importlib
import sys

from grader.commands import COMMANDS


def build_parser():
    """Return the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="grader", description="Grade 'Lesson 6 - CNNs in Keras' submissions.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"grader.commands.{name}").add_parser(commands)
    return parser


def run(argv=None):
    """Parse the command line and run the subcommand; exit with its code."""
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))
