"""Grade one submission: prepare a scratch copy, probe it (untrusted), check the data (trusted), report.

The probe imports the student's code in a sandboxed child process and returns data; meanwhile this
process imports Keras, then rebuilds the models from that data and runs the hidden tests on them. What
decides a grade (the hidden tests, the points, the calibration) is fingerprinted before student code runs
and verified before the checker starts: a grade computed from anything that changed is refused.
"""

import contextlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader.checker.inputs import KitChanged, fingerprint, verify
from grader.options import GradingOptions
from grader.protocol import CRASHED, ERROR, OK, TIMEOUT, ProbeResult
from grader.results import GradingResults, Status
from grader.sandbox import run_probe
from grader.submission import SubmissionError, prepare

WEAK_SANDBOX = ("warning: student code ran with process limits only: this machine allows no other isolation layer "
                "(another user, Landlock, a network namespace). Use --require-sandbox to refuse to grade here.")
KIT_CHANGED = ("The grader's own files changed while this submission ran ({changes}), so no grade was computed. "
               "Reinstall the grader before grading again.")


class SandboxRequired(RuntimeError):
    """--require-sandbox was given and an isolation layer is not available here."""


def quiet_tensorflow():
    """Silence TensorFlow's C++ log from here on (`failed call to cuInit` on a machine without a GPU).

    It takes effect only before this process imports TensorFlow; a TF_CPP_MIN_LOG_LEVEL the instructor set wins.
    A batch worker needs no more (its stderr goes to its log); the lines TensorFlow prints while it is imported,
    before it reads the variable, need filtered_stderr().
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def filtered_stderr():
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

    def copy():
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


def warm_up_keras():
    """Import Keras and the checker's modules (seconds of work) while the probe runs.

    Keras comes as the probe's runner imports it: without the matplotlib.pyplot it loads for keras.visualization
    alone (0.8 s of its 4 s), which the grader never calls. The training pictures import matplotlib when drawn.
    """
    from grader.sandbox import import_keras

    import_keras()
    import grader.checker.run  # noqa: F401


def submission_id(path):
    """Return the id of a submission graded alone: its file or folder name (a batch's are grader.batch.batch_ids)."""
    return Path(path).name or str(path)


def probe_submission(path, options=GradingOptions(), zygote=None, on_start=None):
    """Return the probe's data for a submission, or an import error saying why it could not be read.

    zygote: a grader.sandbox.zygote.Zygote to fork the probe's child from; if it fails, a fresh child runs.
    on_start: called once the probe's child runs (see grader.sandbox.run_probe).
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
            if zygote is not None:
                from grader.sandbox.zygote import ZygoteError

                try:
                    probe = run_probe(folder, probe_request(), limits=options.limits, probe_user=options.probe_user,
                                      require_sandbox=options.require_sandbox, zygote=zygote, on_start=on_start)
                except ZygoteError as error:
                    print(f"warning: {error} A fresh probe process grades this submission.", file=sys.stderr)
            probe = probe or run_probe(folder, probe_request(), limits=options.limits, probe_user=options.probe_user,
                                       require_sandbox=options.require_sandbox, on_start=on_start)
        except RuntimeError as error:
            if options.require_sandbox:
                raise SandboxRequired(str(error)) from None
            raise
        probe.notes = notes + probe.notes
        return probe


def warn_weak_sandbox(probe):
    """Say on stderr when student code ran with no isolation beyond process limits (--require-sandbox refuses)."""
    beyond_limits = [layer for layer in probe.isolation if layer.get("held") and layer.get("name") != "rlimits"]
    if probe.isolation and not beyond_limits:
        print(WEAK_SANDBOX, file=sys.stderr)


def probe_notes(probe):
    """Return what went wrong in the probe, in its own words (a failed import, then each hang or crash), then what
    reading the submission set aside."""
    notes = [probe.import_message] if probe.import_status != OK and probe.import_message else []
    return notes + [f"{name}(): {outcome.message}" for name, outcome in probe.outcomes.items()
                    if outcome.status in (TIMEOUT, CRASHED) and outcome.message] + probe.notes


def grade(path, options=GradingOptions(), *, report_dir=None, trainer=None, submission=None, zygote=None,
          kit=None):
    """Return the GradingResults of one submission (a .py, a folder, a notebook or a .zip) under an id.

    kit: the kit's fingerprint taken earlier (a batch worker takes it once, when it starts); taken now if None.
    """
    started = time.monotonic()
    submission = submission or submission_id(path)
    before = kit or fingerprint()
    # Keras loads in this process while the probe's child runs, unless memory matters more than seconds. It starts
    # once the child runs: started earlier, it would hold the GIL while this thread sets the child up.
    warm_up = None if options.import_after_probe else threading.Thread(target=warm_up_keras, daemon=True)

    def start_warm_up():  # once, even where a failed zygote's probe is run again by a fresh child
        if warm_up is not None and warm_up.ident is None:
            warm_up.start()

    probe = probe_submission(path, options, zygote, on_start=start_warm_up if warm_up else None)
    if warm_up and warm_up.ident is not None:
        warm_up.join()
    try:
        verify(before)
    except KitChanged as error:
        return GradingResults(submission=submission, tests=[], status=Status.ERROR,
                              execution_time=round(time.monotonic() - started, 2),
                              notes=[KIT_CHANGED.format(changes=error)])
    results = check(probe, submission=submission, started=started, options=options, report_dir=report_dir,
                    trainer=trainer)
    warn_weak_sandbox(probe)
    return results


def make_trainer(options):
    """Return the trainer the checker calls: the training check behind a cache, or None without training."""
    if not options.training:
        return None
    from grader.training.check import run_training_check

    if not options.cache:
        return run_training_check
    from grader.cache import TrainingCache

    return TrainingCache(run_training_check, directory=options.cache_dir, seed=options.seed)


def verdict_cache(options):
    """Return the cache of the hidden tests' verdicts for these options, None when it is turned off."""
    if not options.verdict_cache:
        return None
    from grader.verdicts import verdict_cache as cache

    return cache(options.cache_dir)


def run_checks(session, verdicts):
    """Run the hidden tests, taking each part's verdicts from the cache where an equivalent model has some."""
    from grader.checker.run import run_hidden_tests
    from grader.lesson.manifest import PARTS

    keys = verdicts.keys(session.probe, training=session.known_training()) if verdicts else {}
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
    trained_now = session.known_training() if verdicts and "training" not in keys else None
    if trained_now:  # the checks trained it just now: its verdict can be kept under the new outcome's key
        keys["training"] = verdicts.training_key(trained_now)
    for part, key in keys.items():
        if part not in cached and part not in unfinished:
            verdicts.put(key, [test for test in tests if test.part == part])
    tests += [test for part in cached for test in cached[part]]
    return sorted(tests, key=lambda test: PARTS.index(test.part))  # stable: each part keeps its tests' order


def check(probe, *, submission, started=None, options=GradingOptions(), report_dir=None, trainer=None):
    """Return the GradingResults of the hidden tests on one probe's data (trusted: no student code runs here)."""
    from grader.checker.session import GradingSession

    if trainer is None:
        trainer = make_trainer(options)
    started = time.monotonic() if started is None else started
    session = GradingSession(probe, training=options.training, dataset=options.dataset, report_dir=report_dir,
                             trainer=trainer)
    tests = run_checks(session, verdict_cache(options))
    from grader.checker.session import substitution_notes
    from grader.lesson.manifest import PARTS

    graded = [part for part in PARTS if options.training or part != "training"]
    notes = probe_notes(probe) + substitution_notes(probe, graded)  # one line per function replaced by the lesson's
    return GradingResults(submission=submission, tests=tests, execution_time=round(time.monotonic() - started, 2),
                          probe_output=probe.output, notes=notes, artifacts=dict(session.artifacts),
                          sandbox=list(probe.isolation))
