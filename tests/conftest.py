"""Shared fixtures for the kit's own tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
