"""One options object for a grading run, from the command line down to the checker and the batch's workers.

The flags that set it are shared by every command that grades (`grade`, `ci`, `batch`); each command adds
them with add_arguments and reads them back with from_args. Below the commands it is read in two halves: the probe
policy (how student code runs: grader.sandbox.ProbePolicy) and the check policy (what the checker does with the
probe's data: CheckPolicy), each given to the layer that needs it by the process's Grader (grader/grade.py).
"""

import argparse
from dataclasses import dataclass, field

from grader.sandbox import Limits, ProbePolicy

DATASETS = ("synthetic", "cifar10")

TRAINING_HELP = "skip the training check (its tests are left out of the score)"
DATASET_HELP = "data set for the training check: synthetic (default, made by the kit) or cifar10 (Keras cache)"
REQUIRE_SANDBOX_HELP = ("refuse to grade unless every isolation layer of the sandbox holds "
                        "(another user, Landlock, a network namespace)")
IMPORT_AFTER_PROBE_HELP = ("import Keras in the grader only once the probe has run: one TensorFlow process at a time "
                           "(less memory, a few seconds more; run_autograder uses it). Needs the lesson's "
                           "expectations.json to be current (`grader calibrate --expectations`), else the grader "
                           "derives the probe's request with Keras meanwhile")
PROBE_USER_HELP = ("user the student's code runs as when the grader runs as root "
                   "(default: lesson6-probe if it exists, else nobody)")
CACHE_DIR_HELP = ("folder of the training and verdict caches, shared by `grader grade`, `grader batch` and their "
                  "workers (default: ~/.cache/lesson6-grader/training)")
NO_CACHE_HELP = "train the model and run every hidden test, even when an equivalent model was graded already"
LIMIT_HELPS = {
    "import_seconds": "seconds allowed to import the submission (default: %(default)s)",
    "function_seconds": "seconds allowed to each function call in the submission (default: %(default)s)",
    "total_seconds": "seconds allowed to the whole probe of one submission (default: %(default)s)",
    "memory_gib": "memory limit of the submission's process in GiB (default: %(default)s)",
}


@dataclass(frozen=True)
class CheckPolicy:
    """The check half of a run's options (GradingOptions.checks): the training check, its data and the caches."""

    training: bool = True
    dataset: str = "synthetic"
    seed: int = 0
    cache: bool = True                 # reuse training outcomes of equivalent models
    verdict_cache: bool = True         # reuse the hidden tests' verdicts on equivalent models
    cache_dir: str | None = None       # the caches' folder; None: memory only


@dataclass(frozen=True)
class GradingOptions:
    """How every submission of a run is graded (plain, picklable data: batch workers receive it)."""

    limits: Limits = field(default_factory=Limits)
    training: bool = True
    dataset: str = "synthetic"
    cache: bool = True                 # reuse training outcomes of equivalent models
    cache_dir: str | None = None       # on-disk training cache; None with cache=True: memory only
    seed: int = 0
    require_sandbox: bool = False
    probe_user: str | None = None
    worker_memory_bytes: int | None = 8 * 2**30   # address space of each batch worker (soft RLIMIT_AS); None: none
    verdict_cache: bool = True         # reuse the hidden tests' verdicts on equivalent models (grader/cache.py)
    import_after_probe: bool = False   # Keras imported in the grader only once the probe has run
    zygote: bool = True                # batch workers fork probe children from a zygote with Keras imported

    @property
    def probe(self) -> ProbePolicy:
        """Return the probe policy: limits, user, whether every layer is required, the zygote."""
        return ProbePolicy(limits=self.limits, user=self.probe_user, require=self.require_sandbox, zygote=self.zygote)

    @property
    def checks(self) -> CheckPolicy:
        """Return the check policy: the training check, its data set and seed, the caches."""
        return CheckPolicy(training=self.training, dataset=self.dataset, seed=self.seed, cache=self.cache,
                           verdict_cache=self.verdict_cache, cache_dir=self.cache_dir)


NO_TRAINING = GradingOptions(training=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the grading flags (training, data set, sandbox, limits) to a command's parser."""
    defaults = Limits()
    parser.add_argument("--no-training", dest="training", action="store_false", help=TRAINING_HELP)
    parser.add_argument("--dataset", choices=DATASETS, default="synthetic", help=DATASET_HELP)
    parser.add_argument("--require-sandbox", action="store_true", help=REQUIRE_SANDBOX_HELP)
    parser.add_argument("--probe-user", default=None, help=PROBE_USER_HELP)
    parser.add_argument("--import-after-probe", action="store_true", help=IMPORT_AFTER_PROBE_HELP)
    parser.add_argument("--import-timeout", dest="import_seconds", type=float, default=defaults.import_seconds,
                        help=LIMIT_HELPS["import_seconds"])
    parser.add_argument("--function-timeout", dest="function_seconds", type=float,
                        default=defaults.function_seconds, help=LIMIT_HELPS["function_seconds"])
    parser.add_argument("--total-timeout", dest="total_seconds", type=float, default=defaults.total_seconds,
                        help=LIMIT_HELPS["total_seconds"])
    parser.add_argument("--memory", dest="memory_gib", type=float, default=defaults.memory_bytes / 2**30,
                        help=LIMIT_HELPS["memory_gib"])


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --cache-dir and --no-cache (the training and verdict caches) to a command's parser."""
    parser.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    parser.add_argument("--no-cache", dest="cache", action="store_false", help=NO_CACHE_HELP)


def cache_from_args(args: argparse.Namespace) -> dict:
    """Return the GradingOptions fields that --cache-dir and --no-cache set."""
    return {"cache": args.cache, "verdict_cache": args.cache, "cache_dir": args.cache_dir}


def with_default_cache_dir(options: "GradingOptions") -> "GradingOptions":
    """Return options whose cache, when on, has a folder: the default one unless --cache-dir named another."""
    if not options.cache or options.cache_dir is not None:
        return options
    from dataclasses import replace

    from grader.cache import default_directory

    return replace(options, cache_dir=str(default_directory()))


def limits_from(args: argparse.Namespace) -> Limits:
    """Return the Limits the flags ask for."""
    return Limits(import_seconds=args.import_seconds, function_seconds=args.function_seconds,
                  total_seconds=args.total_seconds, memory_bytes=int(args.memory_gib * 2**30))


def from_args(args: argparse.Namespace, **extra) -> GradingOptions:
    """Return the GradingOptions the flags ask for (extra: fields a command sets itself, e.g. the cache)."""
    return GradingOptions(limits=limits_from(args), training=args.training, dataset=args.dataset,
                          require_sandbox=args.require_sandbox, probe_user=args.probe_user,
                          import_after_probe=args.import_after_probe, **extra)
