"""What the isolation layers cost one probe start, side by side with the process limits alone.

    python benchmarks/sandbox_overhead.py [--runs 20] [--keras 0] [--skip LAYER ...]

Times `python -I -S -c "import numpy"` (site-packages appended by hand, as the runner does) started with
Popen(preexec_fn=...) `--runs` times each way, interleaved: with `isolation.plan(...).preexec()` and with a preexec
that sets only the rlimits and the death signal (what the launcher did before). Also times `isolation.plan()`
itself, which the launcher calls once per submission, and the teardown after each probe: `Plan.close()` (kills and
removes the probe's cgroup) and `kill_uid()` (one forked child). `--keras N` adds N starts of `import keras` each way.
`--skip` leaves layers out of the sandboxed side (see isolation.SKIPPABLE), to tell one layer's share.
Prints medians and ratios; asserts nothing. When this interpreter lies where the probe's user cannot reach it
(pyenv under /root), the system interpreter of the same version runs the child, so the user layer is measured too.
"""

import argparse
import importlib.util
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT_ROOT))

from grader.sandbox import account, isolation, kernel, rules  # noqa: E402 (after the path set-up above)

SITE = Path(importlib.util.find_spec("numpy").origin).parents[1]


def limits_only(memory_bytes):
    """Return the launcher's former preexec: rlimits and the death signal, nothing else."""

    def preexec():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (isolation.FILE_SIZE_LIMIT, isolation.FILE_SIZE_LIMIT))
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)

    return preexec


def make_plan(scratch, python, skip=()):
    """Return the plan the launcher would make: read site-packages, block the kit."""
    return isolation.plan(scratch, [SITE], rules.kit_paths(KIT_ROOT, [SITE]), python=python, skip=skip)


def pick_python(scratch):
    """Return this interpreter, or the system one of the same version when only that one holds the user layer."""
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    for python in [Path(sys.executable)] + ([system] if system.exists() else []):
        with make_plan(scratch, python) as plan:
            if plan.held(isolation.USER) or not isolation.host().is_root:
                return python
    return Path(sys.executable)


def start(python, code, scratch, preexec, home):
    """Start one child with HOME and TMPDIR in home (as the launcher does); return its (wall, CPU) seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(python), "-I", "-S", "-c", f"import sys; sys.path.append({str(SITE)!r}); {code}"],
                          check=False, cwd=scratch, capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(home),
                               "TMPDIR": str(home)},
                          start_new_session=True, preexec_fn=preexec)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"the child failed with status {done.returncode}: {done.stderr.decode()[-1500:]}")
    return seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def compare(python, code, runs, scratch, plan):
    """Time runs starts each way, interleaved; print medians and the ratio."""
    sandboxed, bare = [], []
    homes = [scratch / "home-sandboxed", scratch / "home-limits-only"]  # the probe's user may own neither's files
    for home in homes:
        home.mkdir(exist_ok=True)
        home.chmod(0o777)
    for _ in range(runs):
        sandboxed.append(start(python, code, scratch, plan.preexec(), homes[0]))
        bare.append(start(python, code, scratch, limits_only(plan.memory_bytes), homes[1]))
    for kind, index in (("wall", 0), ("CPU", 1)):  # CPU time (user + sys) shifts less with the machine's load
        with_plan = statistics.median(times[index] for times in sandboxed)
        without = statistics.median(times[index] for times in bare)
        print(f"{code!r:24} x{runs} {kind:4}: median {with_plan * 1000:7.1f} ms sandboxed, {without * 1000:7.1f} ms "
              f"limits only, ratio {with_plan / without:.3f}, difference {(with_plan - without) * 1000:+.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keras", type=int, default=0, help="starts of `import keras` each way (slow: ~10 s each)")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(isolation.SKIPPABLE),
                        help="layers to leave out of the sandboxed side")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="lesson6-overhead-") as folder:
        scratch = Path(folder)
        scratch.chmod(0o755)
        started = time.perf_counter()
        isolation.host()
        seconds = time.perf_counter() - started
        print(f"isolation.host() (once per process, forks one test child): {seconds * 1000:.1f} ms")
        python = pick_python(scratch)
        plans, closes, kills = [], [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            plan = make_plan(scratch, python)
            plans.append(time.perf_counter() - started)
            started = time.perf_counter()
            plan.close()
            closes.append(time.perf_counter() - started)
            if plan.uid is not None:
                started = time.perf_counter()
                account.kill_uid(plan.uid)
                kills.append(time.perf_counter() - started)
        print(f"isolation.plan() x{args.runs} (once per submission): median {statistics.median(plans) * 1000:.1f} ms")
        print(f"Plan.close() x{args.runs} (once per submission; the cgroup killed and removed): "
              f"median {statistics.median(closes) * 1000:.1f} ms")
        if kills:
            print(f"kill_uid() x{args.runs} (once per probe end): median {statistics.median(kills) * 1000:.1f} ms")
        with make_plan(scratch, python, args.skip) as plan:
            held = ", ".join(layer.name for layer in plan.layers if layer.held)
            print(f"child interpreter {python}; layers held: {held}")
            compare(python, "import numpy", args.runs, scratch, plan)
            if args.keras:
                compare(python, "import keras", args.keras, scratch, plan)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
