"""Shared fixtures for the kit's own tests."""

import os
import shutil
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


# What a clone has that a wheel must not be built from: venvs, caches, and setuptools' own build/ (it packs what
# build/lib still holds, files deleted from the tree since included).
NOT_IN_A_CLONE = (".git", ".venv", "venv*", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache",
                  ".pytest_cache")


def build_wheel(out, scratch, timeout=600):
    """Build the kit's wheel into out as `pip wheel .` does in a fresh clone: from a copy of the tree made in scratch,
    leaving no build/ in the source tree. Return the CompletedProcess."""
    source = Path(scratch) / "kit"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_IN_A_CLONE), symlinks=True)
    return subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(out), str(source)], capture_output=True, text=True, timeout=timeout)


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


# --- workers ---------------------------------------------------------------------------------------------------------
def pytest_xdist_auto_num_workers(config):
    """Return how many workers `-n auto` starts: one per core, at most one per 3 GiB (a grade peaks near 1 GiB)."""
    cores = len(os.sched_getaffinity(0))
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    return max(1, min(cores, memory_gib // 3))


# --- test tiers ------------------------------------------------------------------------------------------------------
# The quick tier (`pytest -m "not slow"`, what a contributor runs) leaves out what grades whole submissions end to end
# through the sandbox, one after another: these suites, beside the tests marked slow where they stand. The full tier
# (`pytest`, what .ci/run runs) keeps them all. Listed here so that the tier is decided in one place.
END_TO_END_SUITES = (
    "tests/test_styles.py",                 # every correct style and submission form, graded in full
    "tests/test_sandbox_attacks.py",        # each hostile submission of issue 11, graded with every layer
    "tests/test_adversarial_grading.py",    # hostile and broken submissions, graded end to end
    "tests/test_probe_user.py",             # whole probes as the probe's user (root only)
    "tests/test_grading_equivalence.py",    # the same class with and without the zygote and the caches
    "tests/test_lesson_data_sealed.py",     # the probe reads none of the lesson data (a batch per lesson)
    "tests/test_mutants.py::test_mutant_end_to_end_through_the_sandboxed_probe",
)


# The longest files, longest first (measured with per-test durations on 2 workers): a worker takes a file at a time in
# this order (pyproject's --no-loadscope-reorder keeps it; xdist's default would start the files with the most tests),
# so no long file is left to run alone at the end of the full tier. The rest follow in their usual order.
LONGEST_FIRST = (
    "tests/test_deployment.py", "tests/test_grading_equivalence.py", "tests/test_probe_user.py",
    "tests/test_adversarial_grading.py", "tests/test_batch.py", "tests/test_one_charge.py",
    "tests/test_sandbox_attacks.py", "tests/test_mutants.py", "tests/test_training.py",
    "tests/test_adversarial_probe.py", "tests/test_styles.py", "tests/test_cache.py", "tests/test_attacks_class.py",
    "tests/test_probe.py",
)


def pytest_collection_modifyitems(config, items):
    """Mark the end-to-end suites slow (the full tier with the tests marked slow in place); put the longest first."""
    for item in items:
        if item.nodeid.startswith(END_TO_END_SUITES):
            item.add_marker(pytest.mark.slow)
    rank = {path: number for number, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
