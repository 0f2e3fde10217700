"""A batch's worker: a trusted process that imports Keras once and grades the submissions it is sent, one at a time.

It never imports student code: each submission's probe runs in its own sandboxed child, as in `grader grade`. Its
training runs take a slot (TrainingSlots) and its time is counted by phase (PhaseClock) for the batch's closing line.
"""

import contextlib
import fcntl
import os
import signal
import time
import traceback
from pathlib import Path

from grader.results import GradingResults, Status
from grader.store import report_folder, write_reports

ERROR = Status.ERROR
READY = "ready"                # a worker's first message: TensorFlow is imported, deadlines start now
# Training runs at once per batch (0: no limit). A limit of 1 left a worker idle while the other trained: a real class
# of 1,000 took 1,214 s with it and 951 s without (benchmarks/README.md, issue 25).
TRAINING_SLOTS = 0
SLOT_POLL_SECONDS = 0.1
# The workers' time by phase, in the order the closing line names them.
PHASES = ("probe", "training", "waiting for a training slot", "hidden tests and reports")
GRADING_RAISED = "The grader failed on this submission: {error}"


def error_results(submission, message, seconds=0.0):
    """Return the results row of a submission the grader could not grade."""
    return GradingResults(submission=submission, tests=[], execution_time=round(seconds, 2), notes=[message],
                          status=ERROR)


class TrainingSlots:
    """Let at most `count` training runs of a batch's workers run at once (0: no limit).

    A slot is an exclusive flock on a file of the batch's folder: a worker killed while training frees its slot
    as it dies, and whoever waits gets it.
    """

    def __init__(self, folder, count=TRAINING_SLOTS):
        self.paths = [Path(folder) / f"training-slot-{number}.lock" for number in range(count)]

    @contextlib.contextmanager
    def hold(self):
        """Wait for a free slot and hold it."""
        if not self.paths:
            yield
            return
        handles = [open(path, "a+") for path in self.paths]
        try:
            held = self._take(handles)
            try:
                yield
            finally:
                fcntl.flock(held, fcntl.LOCK_UN)
        finally:
            for handle in handles:
                handle.close()

    @staticmethod
    def _take(handles):
        if len(handles) == 1:
            fcntl.flock(handles[0], fcntl.LOCK_EX)
            return handles[0]
        while True:
            for handle in handles:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return handle
                except BlockingIOError:
                    continue
            time.sleep(SLOT_POLL_SECONDS)


class PhaseClock:
    """Add up a worker's seconds by phase."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES[:-1], 0.0)
        self.busy = 0.0  # seconds spent on submissions: the last phase is what the others leave of it

    def report(self):
        """Return {phase: seconds} so far."""
        return {**self.seconds, PHASES[-1]: max(0.0, self.busy - sum(self.seconds.values()))}

    def timed(self, phase, function):
        """Return function, its seconds counted under phase."""
        def run(*args, **kwargs):
            started = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[phase] += time.monotonic() - started

        return run


def schedule_training(trainer, slots, clock):
    """Return the trainer with each actual training run (not a cache hit) holding a slot and timed."""
    if trainer is None:
        return None

    def slotted(run):
        def train(*args, **kwargs):
            waited = time.monotonic()
            with slots.hold():
                clock.seconds["waiting for a training slot"] += time.monotonic() - waited
                return clock.timed("training", run)(*args, **kwargs)

        return train

    if hasattr(trainer, "trainer"):  # a TrainingCache: only its misses train
        trainer.trainer = slotted(trainer.trainer)
        return trainer
    return slotted(trainer)

def grade_one(path, options, grading, reports=None, submission=None):
    """Grade one submission with the worker's Grader and write its reports; return its GradingResults (an error row
    if grading raised)."""
    from grader.grade import submission_id

    started = time.monotonic()
    submission = submission or submission_id(path)
    report_dir = report_folder(reports, submission) if reports else None
    try:
        results = grading.grade(path, report_dir=report_dir, submission=submission)
    except Exception as error:  # one submission's grading failure must not stop the class
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        results = error_results(submission, GRADING_RAISED.format(error=detail[:500]), time.monotonic() - started)
    if report_dir:
        try:
            write_reports(results, report_dir)
        except OSError as error:
            results.notes.append(f"Could not write the reports into {report_dir}: {error}")
    return results


def _cache_counts(trainer):
    return (getattr(trainer, "misses", 0), getattr(trainer, "hits", 0))


def limit_memory(size):
    """Cap this worker's address space (soft limit only: the probes it starts set their own, lower, limits)."""
    if size:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (size if hard == resource.RLIM_INFINITY else min(size, hard), hard))


def worker_main(connection, options, reports, log_path, grader=grade_one, training_slots=TRAINING_SLOTS):
    """Grade the submissions the batch sends, one at a time, until it sends None.

    The worker's one Grader gives its probes a uid of this process's own (as root: one probe's kill_uid spares the
    other workers', as for every Grader), and its trainer a training slot. grader(path, options, grading, reports,
    submission) grades one submission with it. The training slots' lock files live beside the worker's log, in the
    batch's own folder.
    """
    # Keras and TensorFlow chatter would tear the progress bar; keep it in the worker's log instead.
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    from grader.grade import quiet_tensorflow
    from grader.malloc import limit_arenas

    quiet_tensorflow()
    limit_arenas()  # before the worker's Grader starts TensorFlow's threads
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle
    limit_memory(getattr(options, "worker_memory_bytes", None))
    from grader.grade import Grader

    clock = PhaseClock()
    grading = Grader(options, uid_per_process=True)
    grading.trainer = schedule_training(grading.trainer, TrainingSlots(Path(log_path).parent, training_slots), clock)
    if grader is grade_one:
        grading.timed = clock.timed
        grading.start()  # the kit's fingerprint, the zygote, Keras
    connection.send(READY)
    try:
        serve_jobs(connection, options, reports, grader, grading, clock)
    finally:
        grading.close()


def serve_jobs(connection, options, reports, grader, grading, clock=None):
    """Grade the submissions the batch sends, each by grader(path, options, grading, reports, submission), until
    it sends None or goes away."""
    clock = clock or PhaseClock()
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        if job is None:
            return
        index, path, submission = job
        started = time.monotonic()
        try:
            results = grader(path, options, grading, reports, submission)
        except Exception as error:  # last resort: grade_one already turns grading errors into rows
            results = error_results(submission, GRADING_RAISED.format(error=repr(error)[:500]),
                                    time.monotonic() - started)
        clock.busy += time.monotonic() - started
        connection.send((index, results, (*_cache_counts(grading.trainer), clock.report())))
