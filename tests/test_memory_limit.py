"""One grade fits in a container with 600 MiB of memory, as Gradescope runs it (issue 25, item 6).

Gradescope runs run_autograder in a container with a memory limit (768 MB by default): a memory cgroup, which charges
the grade's anonymous memory and the library pages it reads, and kills a process only when no clean page is left to
reclaim. The grade below is the Gradescope one (`--import-after-probe`, the training check included, no cache) in a
cgroup of 600 MiB: it must end with full marks and without an OOM kill, and the cgroup must have been charged for it.

Measured with `benchmarks/grade_resources.py --memory-limit` on a quiet machine: 600 MiB holds the grade at +12-18 %
of its wall time (the kernel reads library pages again), 500 MiB only by thrashing (4.7x the time, and the bonus
lost), 150 MiB kills it after a minute of thrashing.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SOLUTIONS
from tests.memory_limit import evict_from_page_cache, interpreter_folders, make_memory_cgroup

LIMIT_MIB = 600        # issue 25: a margin under Gradescope's 768 MB default
BONUS = 5

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory cgroups are Linux's")


def grade_in_a_container(limit_mib, tmp_path):
    """Run the Gradescope grade of the reference in a memory cgroup of limit_mib; return (exit, report, cgroup)."""
    try:
        group = make_memory_cgroup(limit_mib)
    except OSError as error:
        pytest.skip(f"no memory cgroup can be made here: {error}")
    evict_from_page_cache(*interpreter_folders())  # charged for the libraries it reads, as in a fresh container
    report = tmp_path / "results.json"
    try:
        done = subprocess.run([sys.executable, "-m", "grader", "grade", str(SOLUTIONS), "--format", "json", "--output",
                               str(report), "--import-after-probe", "--no-cache"], cwd=ROOT, capture_output=True,
                              text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                              preexec_fn=group.enter)
        graded = json.loads(report.read_text()) if report.exists() else {}
        return done, graded, (group.peak_mib(), group.oom_kills())
    finally:
        group.remove()


@pytest.mark.slow  # a whole grade with its training check
def test_the_gradescope_grade_fits_in_600_mib(tmp_path):
    done, graded, (peak, oom_kills) = grade_in_a_container(LIMIT_MIB, tmp_path)
    assert done.returncode == 0 and oom_kills == 0, (done.returncode, oom_kills, done.stderr[-3000:])
    failed = [test["name"] for test in graded["tests"] if test["status"] != "passed"]
    assert not failed and graded["score"] == graded["max_score"] + BONUS, failed
    assert 100 < peak <= LIMIT_MIB, peak  # it ran in the cgroup, and the cgroup held it

