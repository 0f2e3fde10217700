"""Measure what one `grader grade` costs a platform: peak memory of its whole process tree, CPU-seconds.

Gradescope's defaults are 768 MB of memory, 0.5 vCPU and a 10-minute timeout; this prints the figures to compare.

    python benchmarks/grade_resources.py solutions [--no-training] [--runs 3] [any other `grader grade` flag]

Two tree figures: the sum of every process's resident memory (RSS), which counts TensorFlow's shared libraries
(~360 MiB of file-backed pages) once per process that maps them, and the same with file-backed pages counted once
(each process's anonymous memory plus the largest file-backed RSS among them), which is what the kernel holds and
what a container's memory limit charges. Then the breakdown: the grader process (the checker) while the probe's
child runs (its Keras import) and after it (rebuilds, hidden tests, training), and the probe's processes.

`--memory-limit MIB` runs each grade as a container with that memory limit runs it (root, a memory cgroup: see
tests/memory_limit.py): the interpreter's files are dropped from the page cache first, so that the grade is charged
for the libraries it reads, and the run prints what the cgroup charged at its peak, how often it reached the limit
(and the kernel reclaimed file pages instead), the OOM kills, and the grade's score.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.sandbox.processes import descendants, process_table  # noqa: E402
from tests.memory_limit import evict_from_page_cache, interpreter_folders, make_memory_cgroup  # noqa: E402

FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")


def memory(pid):
    """Return {field: MiB} of /proc/<pid>/status for FIELDS, or None if the process is gone or not readable."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in FIELDS:
                    found[key] = int(value.split()[0]) / 1024
    except OSError:
        return None
    return found if len(found) == len(FIELDS) else None  # a zombie has no memory lines


def measure(path, extra, report, group=None):
    """Run one grade (in the memory cgroup group, if given); return its peaks in MiB, wall seconds and exit code."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(path), "--format", "json",
                                "--output", str(report), *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                               preexec_fn=group.enter if group else None)
    peaks = dict.fromkeys(("tree RSS", "tree shared once", "checker during probe", "checker after probe",
                           "checker anon", "probe"), 0.0)
    probe_seen = probe_gone = False
    while process.poll() is None:
        tree = {pid: memory(pid) for pid in descendants(process_table(), process.pid) | {process.pid}}
        tree = {pid: found for pid, found in tree.items() if found}
        checker = tree.pop(process.pid, None)
        if checker is None:
            break
        children = list(tree.values())
        probe_seen = probe_seen or bool(children)
        probe_gone = probe_gone or (probe_seen and not children)
        everyone = children + [checker]
        sample = {
            "tree RSS": sum(found["VmRSS"] for found in everyone),
            "tree shared once": sum(found["RssAnon"] + found["RssShmem"] for found in everyone)
            + max(found["RssFile"] for found in everyone),
            "checker after probe" if probe_gone else "checker during probe": checker["VmRSS"],
            "checker anon": checker["RssAnon"],
            "probe": sum(found["VmRSS"] for found in children),
        }
        for key, value in sample.items():
            peaks[key] = max(peaks[key], value)
        time.sleep(0.05)
    process.wait()
    return peaks, time.monotonic() - started, process.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(ROOT / "solutions"))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--memory-limit", type=int, metavar="MIB",
                        help="run each grade in a memory cgroup with this limit, as a container (root)")
    args, extra = parser.parse_known_args()
    runs, cpus, walls = [], [], []
    print(f"load average at the start: {os.getloadavg()[0]:.1f}", flush=True)
    report = Path(f"/tmp/lesson6-grade-resources-{os.getpid()}.json")
    for _ in range(args.runs):
        group = None
        if args.memory_limit:
            evicted = evict_from_page_cache(*interpreter_folders())
            group = make_memory_cgroup(args.memory_limit)
            print(f"cgroup v{group.version} {group.folder}, limit {args.memory_limit} MiB, swap off; "
                  f"{evicted} files of {', '.join(map(str, interpreter_folders()))} dropped from the page cache",
                  flush=True)
        before = os.times()
        peaks, wall, code = measure(args.path, extra, report, group)
        after = os.times()
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        runs.append(peaks), cpus.append(cpu), walls.append(wall)
        graded = json.loads(report.read_text()) if code == 0 and report.exists() else {}
        print(f"run: exit {code}, score {graded.get('score')} / {graded.get('max_score')}, "
              + ", ".join(f"{key} {value:.0f}" for key, value in peaks.items())
              + f" MiB; {cpu:.1f} CPU-s, {wall:.1f} s wall", flush=True)
        if group:
            print(f"  cgroup: charged at most {group.peak_mib():.0f} MiB of {args.memory_limit}, limit reached "
                  f"{group.limit_hits()} times (reclaimed), OOM kills {group.oom_kills()}", flush=True)
            group.remove()
        report.unlink(missing_ok=True)
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(f"median over {args.runs} run(s) of `grader grade {args.path} {' '.join(extra)}` on {os.cpu_count()} cores "
          f"(load average at the end: {os.getloadavg()[0]:.1f}):\n"
          f"  peak of the whole tree:       {median['tree RSS']:.0f} MiB summed RSS, "
          f"{median['tree shared once']:.0f} MiB with shared library pages counted once\n"
          f"  peak of the checker process:  {median['checker during probe']:.0f} MiB while the probe runs, "
          f"{median['checker after probe']:.0f} MiB after it ({median['checker anon']:.0f} MiB of it anonymous)\n"
          f"  peak of the probe's processes: {median['probe']:.0f} MiB\n"
          f"  {statistics.median(cpus):.1f} CPU-s, {statistics.median(walls):.1f} s wall "
          f"(Gradescope default: 768 MB, 0.5 vCPU, 600 s)")


if __name__ == "__main__":
    main()
