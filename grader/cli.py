"""The instructor's command line: it only gathers the commands of grader/commands/ into one parser.

Each command owns its flags and its keyword-only main. Only the report goes to stdout (or --output); logs
and errors go to stderr. `grader grade` exits 0 whenever it produced a report, whatever the score, and 2 when
it was called wrongly.
"""

import argparse
import atexit
import importlib
import os
import sys
import threading
from pathlib import Path

from grader.commands import COMMANDS
from grader.malloc import limit_arenas


def build_parser():
    """Return the argument parser for every subcommand."""
    description = "Grade a lesson's submissions (lesson 6 unless --lesson FOLDER names another)."
    parser = argparse.ArgumentParser(prog="grader", description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"grader.commands.{name}").add_parser(commands)
    return parser


LESSON_OPTION = "--lesson"
NO_LESSON = ("--lesson expects a lesson folder holding lesson.toml and solutions/ (e.g. the kit's lessons/ folders). "
             "Received: {folder}")


def take_lesson(argv):
    """Return argv without `--lesson FOLDER`, pointing the grader at that lesson before any command loads it.

    Every command takes --lesson (grade, batch, gradescope, release, ci, calibrate); without it the lesson is the
    kit's own (lesson 6). The choice travels in GRADER_LESSON to the grader's workers and to later imports.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    for index, item in enumerate(argv):
        if item == LESSON_OPTION or item.startswith(LESSON_OPTION + "="):
            folder = item.partition("=")[2] or (argv[index + 1] if index + 1 < len(argv) else "")
            del argv[index:index + (1 if "=" in item else 2)]
            if not (Path(folder) / "lesson.toml").is_file():
                print(f"grader: error: {NO_LESSON.format(folder=folder or 'nothing')}", file=sys.stderr)
                sys.exit(2)
            os.environ["GRADER_LESSON"] = str(Path(folder).resolve())
            break
    return argv


def run(argv=None):
    """Parse the command line and run the subcommand; exit with its code."""
    limit_arenas()  # before any command starts TensorFlow's threads
    argv = take_lesson(argv)  # before the parser: building it imports the commands, which read the lesson
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))


def main():
    """The `grader` program: run the command, then end the process without Python's and TensorFlow's teardown.

    Tearing down an interpreter that has loaded TensorFlow (module finalization, the library's C++ destructors) takes
    about a second after the report is written and does nothing a command needs. The atexit handlers still run and
    the streams are flushed; an unexpected exception, or a thread still running, ends the process the usual way.
    """
    try:
        run()
    except SystemExit as done:
        if not isinstance(done.code, (int, type(None))) or not _may_end_at_once():
            raise
        code = done.code or 0
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe or stream: nothing more reaches it anyway
    os._exit(code)


def _may_end_at_once():
    """Return whether only daemon threads are left beside this one (a normal exit would wait for the others)."""
    return hasattr(atexit, "_run_exitfuncs") and all(
        thread.daemon for thread in threading.enumerate() if thread is not threading.current_thread())

