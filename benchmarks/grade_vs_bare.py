"""One cold `grader grade` of a correct submission against the otter-equivalent bare script, alternated.

The bare script (shared/anchors/otter_bare/bare.py, see its README) does in one plain process the model work an
otter-grader notebook test of this lesson does. Each round runs `grader grade` in a fresh process with an empty
training cache, then the bare script, then (unless --no-warm) `grader grade` again with the training cache the
first run left (what a re-grade or a second student with the same network costs). Prints every time (wall seconds,
and the CPU seconds of the command and all its processes), the medians and the median of the per-round ratios;
asserts nothing. The CPU seconds move less than wall time where the machine is shared or paused.

    python benchmarks/grade_vs_bare.py [--runs 5] [--submission solutions] [--bare PATH/bare.py] [--before DIR]

--before DIR also times `grader grade` from another checkout of the kit (e.g. `git worktree add DIR <commit>`) in
each round, so that a change is measured against its baseline under the same load.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BARE = Path("/work/shared/anchors/otter_bare/bare.py")


def children_cpu():
    """Return the user + system CPU seconds of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command, cwd, env, check=True, cpu=None):
    """Run a command; return its wall seconds (raise with its stderr tail if it fails and check is set).

    cpu: a list that receives the CPU seconds of the command and every process it waited for.
    """
    started, cpu_before = time.perf_counter(), children_cpu()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if cpu is not None:
        cpu.append(children_cpu() - cpu_before)
    if done.returncode != 0 and not check:
        print(f"  note: {' '.join(map(str, command))} exited {done.returncode} after {seconds:.1f} s: "
              f"{(done.stderr.strip().splitlines() or [''])[-1][:200]}", flush=True)
    elif done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--submission", default="solutions")
    parser.add_argument("--bare", default=str(DEFAULT_BARE))
    parser.add_argument("--no-warm", dest="warm", action="store_false", help="leave out the warm-cache grade")
    parser.add_argument("--before", help="another checkout of the kit whose `grader grade` is timed in each round")
    args, extra = parser.parse_known_args(argv)
    bare = Path(args.bare).resolve()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    cold, warm, plain, ratios, warm_ratios, before, before_ratios = [], [], [], [], [], [], []
    cold_cpu, plain_cpu = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="lesson6-cache-") as cache:
            graded = {**env, "XDG_CACHE_HOME": cache}
            grade = [sys.executable, "-m", "grader", "grade", args.submission, "--output", os.devnull, *extra]
            cold.append(timed(grade, KIT_ROOT, graded, cpu=cold_cpu))
            # bare.py ends with an accuracy assert that a short training run sometimes misses: the work is done
            plain.append(timed([sys.executable, bare.name], bare.parent, env, check=False, cpu=plain_cpu))
            ratios.append(cold[-1] / plain[-1])
            line = (f"round {run + 1}: grader grade (empty cache) {cold[-1]:.1f} s (CPU {cold_cpu[-1]:.1f} s), "
                    f"bare {plain[-1]:.1f} s (CPU {plain_cpu[-1]:.1f} s)")
            if args.warm:
                warm.append(timed(grade, KIT_ROOT, graded))
                warm_ratios.append(warm[-1] / plain[-1])
                line += f", grader grade (cache of the first) {warm[-1]:.1f} s"
            if args.before:
                submission = str((KIT_ROOT / args.submission).resolve())
                before.append(timed([*grade[:4], submission, *grade[5:]], Path(args.before).resolve(), graded))
                before_ratios.append(before[-1] / plain[-1])
                line += f", before {before[-1]:.1f} s"
            print(line + f", load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"grader grade {args.submission}, empty cache: median {statistics.median(cold):.1f} s")
    if warm:
        print(f"grader grade {args.submission}, warm cache:  median {statistics.median(warm):.1f} s")
    print(f"bare script:                        median {statistics.median(plain):.1f} s")
    print(f"median ratio grade / bare (empty cache): {statistics.median(ratios):.2f} x")
    print(f"CPU seconds, medians: grade {statistics.median(cold_cpu):.1f} s, "
          f"bare {statistics.median(plain_cpu):.1f} s; "
          f"median ratio {statistics.median(c / b for c, b in zip(cold_cpu, plain_cpu)):.2f} x")
    if warm:
        print(f"median ratio grade / bare (warm cache):  {statistics.median(warm_ratios):.2f} x")
    if before:
        print(f"grader grade from {args.before}: median {statistics.median(before):.1f} s; median ratio to bare "
              f"{statistics.median(before_ratios):.2f} x; median ratio now / before "
              f"{statistics.median(c / b for c, b in zip(cold, before)):.2f} x")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
