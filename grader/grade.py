"""Grade one submission: prepare a scratch copy, probe it (untrusted), check the data (trusted), report.

The probe imports the student's code in a sandboxed child process and returns data; meanwhile this
process imports Keras, then rebuilds the models from that data and runs the hidden tests on them. What
decides a grade (the hidden tests, the points, the calibration) is fingerprinted before student code runs
and verified before the checker starts: a grade computed from anything that changed is refused.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.checker.inputs import KitChanged, fingerprint, verify
from grader.options import CheckPolicy, GradingOptions
from grader.protocol import CRASHED, ERROR, OK, TIMEOUT, ProbeResult
from grader.results import CheckResult, GradingResults, Status
from grader.sandbox import ProbePolicy, run_probe
from grader.submission import SubmissionError, prepare

if TYPE_CHECKING:
    from grader.checker.session import GradingSession
    from grader.sandbox.zygote import Zygote
    from grader.verdicts import VerdictCache

Trainer = Callable[..., Any]  # trainer(config_json, dataset=...) -> a training outcome (grader.training.check)

WEAK_SANDBOX = ("warning: student code ran with process limits only: this machine allows no other isolation layer "
                "(another user, Landlock, a network namespace). Use --require-sandbox to refuse to grade here.")
KIT_CHANGED = ("The grader's own files changed while this submission ran ({changes}), so no grade was computed. "
               "Reinstall the grader before grading again.")


class SandboxRequired(RuntimeError):
    """--require-sandbox was given and an isolation layer is not available here."""


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ log from here on (`failed call to cuInit` on a machine without a GPU).

    It takes effect only before this process imports TensorFlow; a TF_CPP_MIN_LOG_LEVEL the instructor set wins.
    A batch worker needs no more (its stderr goes to its log); the lines TensorFlow prints while it is imported,
    before it reads the variable, need filtered_stderr().
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Quiet TensorFlow, and pass this process's stderr (file descriptor 2) through a filter of its start-up lines.

    The filter is the one the probe's output goes through (grader.checker.checks.output.without_tensorflow_startup): a
    thread copies every other line to the real stderr as it comes, and the last ones when the block ends.
    """
    from grader.checker.checks.output import without_tensorflow_startup

    quiet_tensorflow()
    sys.stderr.flush()
    try:
        terminal = os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        yield
        return
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def copy() -> None:
        with os.fdopen(read_fd, "rb") as lines:
            for line in lines:
                if without_tensorflow_startup(line.decode("utf-8", "replace")):
                    try:
                        os.write(terminal, line)
                    except OSError:
                        pass

    thread = threading.Thread(target=copy, name="lesson6-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # the pipe's last writer here closes: the thread reads to its end
        thread.join(5)
        os.close(terminal)


def warm_up_keras() -> None:
    """Import Keras and the checker's modules (seconds of work) while the probe runs.

    Keras comes as the probe's runner imports it: without the matplotlib.pyplot it loads for keras.visualization
    alone (0.8 s of its 4 s), which the grader never calls. The training pictures import matplotlib when drawn.
    """
    from grader.sandbox import import_keras

    import_keras()
    import grader.checker.run  # noqa: F401


def submission_id(path: str | Path) -> str:
    """Return the id of a submission graded alone: its file or folder name (a batch's are grader.batch.batch_ids)."""
    return Path(path).name or str(path)


def warn_weak_sandbox(probe: ProbeResult) -> None:
    """Say on stderr when student code ran with no isolation beyond process limits (--require-sandbox refuses)."""
    beyond_limits = [layer for layer in probe.isolation if layer.get("held") and layer.get("name") != "rlimits"]
    if probe.isolation and not beyond_limits:
        print(WEAK_SANDBOX, file=sys.stderr)


def probe_notes(probe: ProbeResult) -> list[str]:
    """Return what went wrong in the probe, in its own words (a failed import, then each hang or crash), then what
    reading the submission set aside."""
    notes = [probe.import_message] if probe.import_status != OK and probe.import_message else []
    return notes + [f"{name}(): {outcome.message}" for name, outcome in probe.outcomes.items()
                    if outcome.status in (TIMEOUT, CRASHED) and outcome.message] + probe.notes


def run_checks(session: GradingSession, verdicts: VerdictCache | None) -> list[CheckResult]:
    """Run the hidden tests, taking each part's verdicts from the cache where an equivalent model has some."""
    from grader.checker.run import run_hidden_tests
    from grader.lesson.manifest import PARTS

    if verdicts is None:  # nothing to reuse, nothing to keep
        tests = run_hidden_tests(session, skip_parts={}, unfinished=set())
        return sorted(tests, key=lambda test: PARTS.index(test.part))
    keys = verdicts.keys(session.probe, training=session.known_training())
    cached = {}
    for part, key in keys.items():
        found = verdicts.get(key)
        if found is not None:
            cached[part] = found
    if "training" in cached:
        session.save_training_pictures(session.training_outcome())  # the report's pictures come with the outcome
    unfinished: set[str] = set()  # parts with a check that timed out or crashed: what they say is not a verdict to keep
    graded = set(PARTS) if session.training else set(PARTS) - {"training"}  # without training it has no verdict
    tests = run_hidden_tests(session, skip_parts=cached, unfinished=unfinished) if graded - set(cached) else []
    trained_now = session.known_training() if "training" not in keys else None
    if trained_now:  # the checks trained it just now: its verdict can be kept under the new outcome's key
        keys["training"] = verdicts.training_key(trained_now)
    for part, key in keys.items():
        if part not in cached and part not in unfinished:
            verdicts.put(key, [test for test in tests if test.part == part])
    tests += [test for part in cached for test in cached[part]]
    return sorted(tests, key=lambda test: PARTS.index(test.part))  # stable: each part keeps its tests' order


class Grader:
    """Grade submissions in this process: one Grader per process, holding what outlives one submission.

    It splits the run's GradingOptions into the probe's policy (how student code runs) and the check policy (what
    the checker does with the probe's data), and owns the kit's fingerprint, the probe zygote, the trainer and the
    verdict cache. A batch worker starts one and grades every submission it is sent with it; `grader grade` grades
    one submission with one. Nothing of a grading run is kept at module level.
    """

    def __init__(self, options: GradingOptions = GradingOptions(), *, uid_per_process: bool = True,
                 trainer: Trainer | None = None, zygote: Zygote | None = None) -> None:
        self.options = options
        self.probe_policy: ProbePolicy = replace(options.probe, uid_per_process=uid_per_process)
        self.check_policy: CheckPolicy = options.checks
        self.zygote = zygote
        self.drawn: dict[str, dict[str, bytes]] = {}  # training pictures already drawn (grader.training.pictures)
        # timed(phase, function) -> function, its seconds counted under phase (a batch worker's PhaseClock)
        self.timed: Callable[[str, Callable[..., Any]], Callable[..., Any]] | None = None
        self._kit_files: dict[str, str] | None = None
        if trainer is not None:
            self.trainer = trainer

    def kit_files(self) -> dict[str, str]:
        """Return the digests of the kit's files that decide a grade, taken once (grader.checker.inputs)."""
        if self._kit_files is None:
            self._kit_files = fingerprint()
        return self._kit_files

    @functools.cached_property
    def kit(self) -> str:
        """Return the kit's one fingerprint, the key material of both caches (grader.cache.kit_fingerprint)."""
        from grader.cache import kit_fingerprint

        return kit_fingerprint(self.kit_files())

    @functools.cached_property
    def trainer(self) -> Trainer | None:
        """Return the trainer the checker calls: the training check behind a cache, or None without training."""
        policy = self.check_policy
        if not policy.training:
            return None
        from grader.training.check import run_training_check

        if not policy.cache:
            return run_training_check
        from grader.cache import TrainingCache

        return TrainingCache(run_training_check, directory=policy.cache_dir, seed=policy.seed,
                             kit=lambda: self.kit)

    @functools.cached_property
    def verdicts(self) -> VerdictCache | None:
        """Return the cache of the hidden tests' verdicts, None when it is turned off."""
        if not self.check_policy.verdict_cache:
            return None
        from grader.verdicts import VerdictCache

        return VerdictCache(self.check_policy.cache_dir, kit=lambda: self.kit)

    def start(self) -> None:
        """Get ready to grade many submissions (a batch worker): the kit's fingerprint, the zygote, Keras."""
        self.kit_files()
        if self.probe_policy.zygote and self.zygote is None:
            from grader.sandbox.zygote import Zygote

            self.zygote = Zygote()
            self.zygote.launch()  # it imports Keras while this process does
        warm_up_keras()

    def close(self) -> None:
        """Stop the zygote, if this Grader started one."""
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None

    def probe(self, path: str | Path, on_start: Callable[[], None] | None = None) -> ProbeResult:
        """Return the probe's data for a submission, or an import error saying why it could not be read.

        on_start: called once the probe's child runs (see grader.sandbox.run_probe). Where the zygote fails, a fresh
        child runs the probe.
        """
        from grader.checker.hidden_tests.cases import probe_request

        with tempfile.TemporaryDirectory(prefix="lesson6-grading-") as scratch:
            notes: list[str] = []  # what reading the submission set aside (a notebook's magics): the report lists it
            try:
                folder = prepare(path, scratch, notes)
            except SubmissionError as error:
                return ProbeResult(import_status=ERROR, import_message=str(error))
            try:
                probe = None
                if self.zygote is not None:
                    from grader.sandbox.zygote import ZygoteError

                    try:
                        probe = run_probe(folder, probe_request(), self.probe_policy, zygote=self.zygote,
                                          on_start=on_start)
                    except ZygoteError as error:
                        print(f"warning: {error} A fresh probe process grades this submission.", file=sys.stderr)
                # probe_request, not its value: computed while the fresh child imports Keras (both take seconds)
                probe = probe or run_probe(folder, probe_request, self.probe_policy, on_start=on_start)
            except RuntimeError as error:
                if self.probe_policy.require:
                    raise SandboxRequired(str(error)) from None
                raise
            probe.notes = notes + probe.notes
            return probe

    def grade(self, path: str | Path, *, report_dir: str | Path | None = None,
              submission: str | None = None) -> GradingResults:
        """Return the GradingResults of one submission (a .py, a folder, a notebook or a .zip) under an id."""
        started = time.monotonic()
        submission = submission or submission_id(path)
        before = self.kit_files()
        # Keras loads in this process while the probe's child runs, unless memory matters more than seconds. It
        # starts once the child runs: started earlier, it would hold the GIL while this thread sets the child up.
        warm_up = None if self.options.import_after_probe else threading.Thread(target=warm_up_keras, daemon=True)

        def start_warm_up() -> None:  # once, even where a failed zygote's probe is run again by a fresh child
            if warm_up is not None and warm_up.ident is None:
                warm_up.start()

        probe_once = self.timed("probe", self.probe) if self.timed else self.probe
        probe = probe_once(path, on_start=start_warm_up if warm_up else None)
        if warm_up and warm_up.ident is not None:
            warm_up.join()
        try:
            verify(before)
        except KitChanged as error:
            return GradingResults(submission=submission, tests=[], status=Status.ERROR,
                                  execution_time=round(time.monotonic() - started, 2),
                                  notes=[KIT_CHANGED.format(changes=error)])
        results = self.check(probe, submission=submission, started=started, report_dir=report_dir)
        warn_weak_sandbox(probe)
        return results

    def check(self, probe: ProbeResult, *, submission: str, started: float | None = None,
              report_dir: str | Path | None = None) -> GradingResults:
        """Return the GradingResults of the hidden tests on one probe's data (trusted: no student code runs here)."""
        from grader.checker.session import GradingSession, substitution_notes
        from grader.lesson.manifest import PARTS

        policy = self.check_policy
        started = time.monotonic() if started is None else started
        session = GradingSession(probe, training=policy.training, dataset=policy.dataset, report_dir=report_dir,
                                 trainer=self.trainer, drawn=self.drawn)
        tests = run_checks(session, self.verdicts)
        graded = [part for part in PARTS if policy.training or part != "training"]
        notes = probe_notes(probe) + substitution_notes(probe, graded)  # one line per function replaced by the lesson's
        return GradingResults(submission=submission, tests=tests, execution_time=round(time.monotonic() - started, 2),
                              probe_output=probe.output, notes=notes, artifacts=dict(session.artifacts),
                              sandbox=list(probe.isolation))


def grade(path: str | Path, options: GradingOptions = GradingOptions(), *, report_dir: str | Path | None = None,
          trainer: Trainer | None = None, submission: str | None = None) -> GradingResults:
    """Return the GradingResults of one submission, graded by a Grader of its own (see Grader.grade)."""
    return Grader(options, trainer=trainer).grade(path, report_dir=report_dir, submission=submission)


def probe_submission(path: str | Path, options: GradingOptions = GradingOptions(), zygote: Zygote | None = None,
                     on_start: Callable[[], None] | None = None) -> ProbeResult:
    """Return the probe's data for a submission (see Grader.probe); zygote: a Zygote to fork the probe's child from."""
    return Grader(options, zygote=zygote).probe(path, on_start=on_start)


def check(probe: ProbeResult, *, submission: str, started: float | None = None,
          options: GradingOptions = GradingOptions(), report_dir: str | Path | None = None,
          trainer: Trainer | None = None) -> GradingResults:
    """Return the GradingResults of the hidden tests on one probe's data, by a Grader of its own (see Grader.check)."""
    return Grader(options, trainer=trainer).check(probe, submission=submission, started=started,
                                                 report_dir=report_dir)
