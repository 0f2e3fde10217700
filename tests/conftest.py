"""Shared fixtures for the kit's own tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.sandbox.processes import TOKEN_VARIABLE, descendants, process_table

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"


def run_python(*args, cwd=ROOT, timeout=300, env=None):
    """Run the kit's python with args; return the CompletedProcess (text, both streams captured)."""
    merged = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=merged)


@pytest.fixture(scope="session")
def root():
    return ROOT


def leftover_probe_processes():
    """Return the live processes below this test process that a probe started.

    run_probe makes this process a child subreaper, so even escaped probe processes end up below it;
    probes of other processes on the same machine do not.
    """
    table = process_table()
    return sorted(pid for pid in descendants(table, os.getpid())
                  if table[pid][3] != "Z" and carries_any_token(pid))


def carries_any_token(pid):
    """Return whether a process was started with a probe token in its environment."""
    try:
        return TOKEN_VARIABLE.encode() + b"=" in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
