"""How fast the kit grades, side by side with what the same work costs without it.

    python benchmarks/grading_speed.py [--runs 3] [--only a,b,c] [--jobs 2] [--no-training]

(a) one correct submission, cold: `grader grade solutions` in a fresh process, against
    benchmarks/bare_training.py (import TensorFlow, build the network, train the same budget);
(b) a class of 14 mixed submissions (benchmarks/class_folder.py): `grader batch --jobs N` with an empty
    training cache, against `grader grade` run on each submission in turn;
(c) `pytest exercises --impl solutions`, the students' visible tests on the reference.

Prints medians and ratios; asserts nothing (times are benchmarks, never test assertions). The machine is
printed too, with its load average: figures taken while other work runs are slower and noisier.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT_ROOT))
GRADER = [sys.executable, "-m", "grader"]
# The hanging submission waits for this limit in both ways of grading the class.
CLASS_LIMITS = ["--function-timeout", "10"]


def environment():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def timed(command, **options):
    """Run a command; return its wall seconds (raise with its stderr tail if it fails)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=KIT_ROOT, capture_output=True, text=True, env=environment(), **options)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def machine():
    """Return the lines that say what the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    versions = subprocess.run([sys.executable, "-c", "import tensorflow as tf, keras; "
                               "print(tf.__version__, keras.__version__)"],
                              capture_output=True, text=True, env=environment()).stdout.split()
    return [f"machine: {os.cpu_count()} CPUs ({model}), {platform.python_implementation()} "
            f"{platform.python_version()}, TensorFlow {versions[0] if versions else '?'}, "
            f"Keras {versions[1] if len(versions) > 1 else '?'}",
            f"load average at start: {os.getloadavg()[0]:.2f}"]


def row(label, values, unit="s"):
    shown = ", ".join(f"{value:.1f}" for value in values)
    return f"  {label:<52} median {statistics.median(values):7.1f} {unit}   [{shown}]"


def bench_one(runs, training):
    """(a) cold grading of the reference against the bare model work."""
    flags = [] if training else ["--no-training"]
    grade = [timed(GRADER + ["grade", "solutions", "--output", os.devnull] + flags) for _ in range(runs)]
    bare = [timed([sys.executable, "benchmarks/bare_training.py"]) for _ in range(runs)] if training else None
    lines = ["(a) one correct submission, cold process", row("grader grade solutions" + " ".join([""] + flags), grade)]
    if bare:
        lines.append(row("bare script: import TF, build, train the same budget", bare))
        lines.append(f"  {'ratio grader / bare':<52} {statistics.median(grade) / statistics.median(bare):7.2f} x")
    return lines


def bench_class(jobs, training):
    """(b) a class of 14: one batch against 14 separate `grader grade` runs."""
    from benchmarks.class_folder import make_class

    flags = ([] if training else ["--no-training"]) + CLASS_LIMITS
    with tempfile.TemporaryDirectory(prefix="lesson6-bench-") as scratch:
        scratch = Path(scratch)
        paths = make_class(scratch / "class")
        count = len(paths)
        batch = timed(GRADER + ["batch", str(scratch / "class"), "--jobs", str(jobs), "--output",
                                str(scratch / "grades.csv"), "--cache-dir", str(scratch / "cache")] + flags)
        warm = timed(GRADER + ["batch", str(scratch / "class"), "--jobs", str(jobs), "--output",
                               str(scratch / "grades.csv"), "--cache-dir", str(scratch / "cache")] + flags)
        one_by_one = [timed(GRADER + ["grade", str(path), "--output", os.devnull] + flags) for path in paths]
    serial = sum(one_by_one)
    return [f"(b) a class of {count} mixed submissions" + ("" if training else " (no training)"),
            f"  {f'grader batch --jobs {jobs}, empty training cache':<52} total {batch:7.1f} s   "
            f"{batch / count:5.1f} s per submission",
            f"  {f'grader batch --jobs {jobs}, cache from the run above':<52} total {warm:7.1f} s   "
            f"{warm / count:5.1f} s per submission",
            f"  {'grader grade, one submission after another':<52} total {serial:7.1f} s   "
            f"{serial / count:5.1f} s per submission (median {statistics.median(one_by_one):.1f} s)",
            f"  {'speed-up of the batch (empty cache)':<52} {serial / batch:7.2f} x"]


def bench_visible(runs):
    """(c) the students' visible tests on the reference."""
    seconds = [timed([sys.executable, "-m", "pytest", "exercises", "--impl", "solutions", "-q", "-p",
                      "no:cacheprovider"]) for _ in range(runs)]
    return ["(c) visible tests", row("pytest exercises --impl solutions", seconds)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repeats of (a) and (c) (default: 3)")
    parser.add_argument("--only", default="a,b,c", help="which benchmarks to run (default: a,b,c)")
    parser.add_argument("--jobs", type=int, default=2, help="workers of the batch in (b) (default: 2)")
    parser.add_argument("--no-training", dest="training", action="store_false", help="leave the training check out")
    args = parser.parse_args(argv)
    chosen = set(args.only.split(","))
    lines = machine()
    print("\n".join(lines), flush=True)
    for name, bench in (("a", lambda: bench_one(args.runs, args.training)),
                        ("b", lambda: bench_class(args.jobs, args.training)),
                        ("c", lambda: bench_visible(args.runs))):
        if name in chosen:
            found = bench()
            print("\n".join(found), flush=True)
            lines += found
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
