"""Benchmark the training check on the reference model: warm runs in one process, and one cold run.

    python benchmarks/training_check.py [--runs 5] [--dataset synthetic]

Prints the budget in image-steps, the images each run trained on before it stopped, the check's seconds (median of
the warm runs; seeds 0, 1, ... so the accuracies show a little of the spread) and the accuracies; asserts nothing
(times are benchmarks, never test assertions).
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.training import calibration, check  # noqa: E402

COLD_SCRIPT = """
import sys, time
start = time.perf_counter()
from grader.training import check
outcome = check.run_training_check(open(sys.argv[1]).read(), dataset=sys.argv[2], seed=0)
print(outcome.accuracy, outcome.seconds, time.perf_counter() - start)
"""


def cold_run(model_json, dataset):
    """Return (accuracy, check seconds, seconds with imports, process wall seconds) of a run in a fresh process."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(model_json)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT, handle.name, dataset], cwd=KIT_ROOT, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    os.unlink(handle.name)
    if result.returncode:
        raise RuntimeError(f"The cold run failed:\n{result.stderr[-2000:]}")
    accuracy, seconds, with_imports = map(float, result.stdout.split()[-3:])
    return accuracy, seconds, with_imports, wall


def main(argv=None):
    """Time the check and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs, seeds 0 to runs-1 (default 5)")
    parser.add_argument("--dataset", choices=check.DATASETS, default="synthetic")
    args = parser.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, CPU count {os.cpu_count()}, "
          f"load average at the start {os.getloadavg()[0]:.2f}")
    model_json = calibration.model_configs()["reference"]
    budget = check.BUDGETS[args.dataset]
    image_steps = budget.n_train * budget.epochs
    steps = -(-budget.n_train // budget.batch_size) * budget.epochs
    print(f"budget: {check.fingerprint(args.dataset)}")
    threshold = check.THRESHOLDS.get(args.dataset)
    print(f"image-steps: {image_steps:,} ({steps} steps of {budget.batch_size}); threshold {threshold}")
    warm_up = check.run_training_check(model_json, dataset=args.dataset, seed=0)
    print(f"warm-up: {warm_up.seconds:.2f} s, accuracy {warm_up.accuracy:.3f} on {warm_up.device}")
    outcomes, cpu_seconds = [], []
    for seed in range(args.runs):
        cpu_start = time.process_time()
        outcomes.append(check.run_training_check(model_json, dataset=args.dataset, seed=seed))
        cpu_seconds.append(time.process_time() - cpu_start)
    seconds = [o.seconds for o in outcomes]
    median = statistics.median(seconds)
    print(
        f"warm, {args.runs} runs (seeds 0-{args.runs - 1}): median {median:.2f} s (min {min(seconds):.2f}, "
        f"max {max(seconds):.2f}), {statistics.median(o.images / o.seconds for o in outcomes):.0f} images/s; "
        f"accuracies {[round(o.accuracy, 4) for o in outcomes]}"
    )
    # CPU time (all threads) moves less than wall time when other jobs share the cores.
    print(f"warm, CPU seconds (user + sys, all threads): median {statistics.median(cpu_seconds):.2f} s "
          f"{[round(s, 2) for s in cpu_seconds]}")
    print(f"images trained before the run ended (budget {image_steps:,}): {[o.images for o in outcomes]}")
    accuracy, seconds, with_imports, wall = cold_run(model_json, args.dataset)
    print(
        f"cold (fresh process): check {seconds:.2f} s, with imports {with_imports:.2f} s, "
        f"process {wall:.2f} s; accuracy {accuracy:.4f}"
    )
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other work on the cores skews these times)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
