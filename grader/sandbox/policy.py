"""How student code runs: the limits of one probe and the policy every probe of a grading process follows."""

from dataclasses import dataclass, field

from grader.sandbox.isolation import DEFAULT_MAX_PROCESSES


@dataclass(frozen=True)
class Limits:
    """Limits of one probe run."""

    import_seconds: float = 60
    function_seconds: float = 60  # per API function (a builder call, a list of shape-math calls)
    total_seconds: float = 180    # the whole probe, restarts included
    memory_bytes: int = 4 * 2**30  # address space per process and resident memory of the process tree
    output_chars: int = 20_000
    max_processes: int = DEFAULT_MAX_PROCESSES  # processes and threads of the probe's uid (RLIMIT_NPROC)


@dataclass(frozen=True)
class ProbePolicy:
    """The probe half of a grading run's options (grader.options.GradingOptions.probe): how each probe runs."""

    limits: Limits = field(default_factory=Limits)
    user: str | None = None        # the account the probe runs as when the grader is root (None: the default one)
    require: bool = False          # refuse to grade unless every isolation layer holds (--require-sandbox)
    zygote: bool = False           # fork probe children from a zygote with Keras imported (batch workers)
    # As root, probes run as a uid of this grading process's own (account.worker_uid), in the account's group: the
    # end of one probe (every process of its uid killed) never reaches the probe of another grader running at the
    # same time. False: the account's own uid, shared by every grader of the machine.
    uid_per_process: bool = True
