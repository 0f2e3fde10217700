"""Measure what one `grader grade` costs a platform: peak resident memory of its whole process tree, CPU-seconds.

Gradescope's defaults are 768 MB of memory, 0.5 vCPU and a 10-minute timeout; this prints the figures to compare.

    python benchmarks/grade_resources.py solutions [--no-training] [--runs 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.sandbox.processes import descendants, process_table, resident_bytes  # noqa: E402


def measure(path, extra):
    """Run one grade; return (peak tree RSS in MiB, wall seconds, exit code)."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(path), "--format", "json",
                                "--output", os.devnull, *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    peak = 0
    while process.poll() is None:
        tree = descendants(process_table(), process.pid) | {process.pid}
        peak = max(peak, resident_bytes(tree))
        time.sleep(0.05)
    wall = time.monotonic() - started
    return peak / 2**20, wall, process.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(ROOT / "solutions"))
    parser.add_argument("--runs", type=int, default=1)
    args, extra = parser.parse_known_args()
    peaks, cpus, walls = [], [], []
    for _ in range(args.runs):
        before = os.times()
        peak, wall, code = measure(args.path, extra)
        after = os.times()
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        peaks.append(peak), cpus.append(cpu), walls.append(wall)
        print(f"run: exit {code}, peak tree RSS {peak:.0f} MiB, {cpu:.1f} CPU-s, {wall:.1f} s wall", flush=True)
    print(f"median over {args.runs} run(s) of `grader grade {args.path} {' '.join(extra)}` on {os.cpu_count()} cores: "
          f"peak {statistics.median(peaks):.0f} MiB, {statistics.median(cpus):.1f} CPU-s, "
          f"{statistics.median(walls):.1f} s wall (Gradescope default: 768 MB, 0.5 vCPU, 600 s)")


if __name__ == "__main__":
    main()
