"""Grade a whole class: every entry of a folder is one submission, graded in isolation by warm workers.

Most of the time of one `grader grade` goes to importing TensorFlow (in the checker and again in the
probe's child) and to the training check. A batch keeps `jobs` trusted worker processes alive: each one
imports Keras and the checker once, then grades submissions one after another, each in its own sandboxed
probe child as `grader grade` does. The training check goes through a TrainingCache, so each distinct
model is trained once per class (and once across runs, with the on-disk cache).

Each training runs with the very thread configuration of `grader grade` (a thread per core: the accuracy depends on
it), so two at once share the cores; `training_slots` can make them take turns (TrainingSlots), but a worker that
waits for a slot idles, and a real class graded faster without one (benchmarks/README.md).

The main process only hands out submissions, watches the workers, and writes the gradebook. A worker
that dies or runs past a submission's deadline is killed with its whole process tree and replaced;
that submission's row gets status "error" and the batch goes on.
"""

import multiprocessing
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from grader.exports import GRADESCOPE_METADATA, submission_ids
from grader.store import Gradebook
from grader.worker import PHASES, READY, TRAINING_SLOTS, error_results, grade_one, worker_main

SKIPPED_NAMES = ("__pycache__", "__MACOSX", GRADESCOPE_METADATA)  # a Gradescope export's metadata: no student
WORKER_START_SECONDS = 120     # a fresh worker imports TensorFlow before its first submission
CHECK_SECONDS = 300            # the hidden tests without the training check, generously
TRAINING_SECONDS = 600         # the training check's own limit is lower; this only catches a stuck worker
POLL_SECONDS = 0.5
LOG_TAIL_CHARS = 1500

# Messages of error rows, in the words the gradebook and the report show.
WORKER_DIED = "The grader's worker process died (exit status {code}) while grading this submission.{log}"
WORKER_TIMED_OUT = ("Grading this submission took more than {seconds:g} s; the grader's worker was stopped "
                    "and the batch went on.")
WORKER_LOG = " Its last log lines:\n{tail}"


@dataclass
class BatchSummary:
    """What a batch did, for the closing line on stderr and for benchmarks."""

    results: list = field(default_factory=list)   # GradingResults, in the order of the submissions
    seconds: float = 0.0
    trained: int = 0                              # training runs actually done
    reused: int = 0                               # training outcomes taken from the cache
    workers_started: int = 0
    phases: dict = field(default_factory=dict)    # PHASES -> seconds, summed over the workers

    def phase_line(self):
        """Return the workers' time by phase in one line (empty when no worker reported any)."""
        if not self.phases:
            return ""
        parts = ", ".join(f"{name} {self.phases.get(name, 0.0):.0f} s" for name in PHASES)
        return f"Worker time: {parts}."


def find_submissions(folder, *, exclude=()):
    """Return the submissions in a folder: every entry but hidden ones, caches and the batch's own outputs."""
    excluded = {Path(path).resolve() for path in exclude if path}
    found = []
    for entry in sorted(Path(folder).iterdir(), key=lambda path: path.name):
        if entry.name.startswith(".") or entry.name in SKIPPED_NAMES or entry.resolve() in excluded:
            continue
        found.append(entry)
    return found


def batch_ids(paths) -> list:
    """Return the submission id of each path, in order: the file name without its extension, if unique."""
    ids = submission_ids(paths)
    return [ids[Path(path)] for path in paths]


def submission_deadline(options):
    """Return the seconds one submission may take in a worker before the worker is stopped."""
    return options.limits.total_seconds + CHECK_SECONDS + (TRAINING_SECONDS if options.training else 0)


# --- the batch (main process) -----------------------------------------------------------------------------


class _Worker:
    """One worker process and the submission it is grading."""

    def __init__(self, context, options, reports, log_dir, number, grader, training_slots=TRAINING_SLOTS):
        self.log_path = str(Path(log_dir) / f"worker-{number}.log")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=worker_main,
                                       args=(child_end, options, reports, self.log_path, grader, training_slots),
                                       name=f"lesson6-grader-worker-{number}", daemon=True)
        self.process.start()
        child_end.close()
        self.job = None
        self.started_at = time.monotonic()
        self.ready_at = self.sent_at = None
        self.counts = (0, 0)

    def send(self, index, path, submission):
        self.job = index
        self.sent_at = time.monotonic()
        self.connection.send((index, str(path), submission))

    def overdue(self, now, seconds):
        """Return whether the worker's submission has run past its time (counted once the worker is ready)."""
        if self.job is None:
            return False
        if self.ready_at is None:
            return now - self.started_at > WORKER_START_SECONDS + seconds
        return now - max(self.sent_at, self.ready_at) > seconds

    def busy_seconds(self, now):
        """Return how long the worker has spent on its submission."""
        return now - max(self.sent_at or now, self.ready_at or 0)

    def log_tail(self):
        try:
            text = Path(self.log_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[-LOG_TAIL_CHARS:].strip()

    def kill(self):
        """Kill the worker and every process below it (probe children, and orphans it adopted)."""
        from grader.sandbox.processes import kill_tree

        kill_tree(self.process.pid)
        self.process.join(5)
        self.connection.close()

    def stop(self):
        """Ask the worker to finish and wait for it."""
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.kill()
        else:
            self.connection.close()


class Scheduler:
    """Hand submissions to `jobs` warm workers, collect their results, and replace a worker that fails."""

    def __init__(self, paths, *, jobs, options, reports, grader, deadline_seconds, progress, gradebook, ids=None,
                 training_slots=TRAINING_SLOTS):
        self.paths, self.jobs, self.options, self.reports = paths, jobs, options, reports
        self.training_slots = training_slots
        self.ids = ids or batch_ids(paths)  # one id per path, the same in the worker's row and an error row
        self.grader, self.deadline_seconds = grader, deadline_seconds
        self.progress, self.gradebook = progress, gradebook
        self.summary = BatchSummary(results=[None] * len(paths))
        self.context = multiprocessing.get_context("spawn")  # never fork a process holding TensorFlow threads
        self.pending = deque(range(len(paths)))
        self.workers = []
        self.log_dir = None

    def run(self):
        """Grade every submission; return the BatchSummary."""
        finished = False
        with tempfile.TemporaryDirectory(prefix="lesson6-batch-") as self.log_dir:
            try:
                self.top_up()
                while self.pending or any(worker.job is not None for worker in self.workers):
                    self.step()
                finished = True
            finally:
                for worker in self.workers:
                    self.count(worker)
                    if finished:
                        worker.stop()
                    else:  # interrupted: a busy worker would finish its submission first
                        worker.kill()
        return self.summary

    def step(self):
        """Wait for a message or a death, then stop overdue workers and give idle ones work."""
        waitables = {}
        for worker in self.workers:
            waitables[worker.connection] = worker
            waitables[worker.process.sentinel] = worker
        for ready in wait(list(waitables), timeout=POLL_SECONDS):
            worker = waitables[ready]
            if worker not in self.workers:
                continue
            if ready is worker.connection:
                self.receive(worker)
            elif not worker.process.is_alive():
                self.buried(worker)
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.overdue(now, self.deadline_seconds):
                self.retire(worker, WORKER_TIMED_OUT.format(seconds=self.deadline_seconds))
        self.top_up()
        if self.progress:
            self.progress.tick()

    def receive(self, worker):
        """Take one message from a worker: READY, or a finished submission."""
        try:
            message = worker.connection.recv()
        except (EOFError, OSError):
            return  # the sentinel reports the death
        if message == READY:
            worker.ready_at = time.monotonic()
            return
        try:
            index, results, counts = message
        except (TypeError, ValueError):
            return
        worker.counts = counts
        if index == worker.job:
            self.finish(index, results)
        self.dispatch(worker)

    def buried(self, worker):
        """Handle a worker that ended: an idle one lost nothing; a busy one costs its submission's row."""
        worker.process.join()
        if worker.job is None:
            self.count(worker)
            self.workers.remove(worker)
            return
        tail = worker.log_tail()
        self.retire(worker, WORKER_DIED.format(code=worker.process.exitcode,
                                               log=WORKER_LOG.format(tail=tail) if tail else ""))

    def count(self, worker):
        """Add a worker's training counts to the summary."""
        self.summary.trained += worker.counts[0]
        self.summary.reused += worker.counts[1]
        for phase, seconds in (worker.counts[2] if len(worker.counts) > 2 else {}).items():
            self.summary.phases[phase] = self.summary.phases.get(phase, 0.0) + seconds

    def finish(self, index, results):
        """Record one submission's results."""
        self.summary.results[index] = results
        self.gradebook.add(results)
        if self.progress:
            self.progress.done(results)

    def retire(self, worker, message):
        """Record the worker's submission as an error, kill the worker, and drop it (top_up replaces it)."""
        if worker.job is not None:
            self.finish(worker.job, error_results(self.ids[worker.job], message,
                                                  worker.busy_seconds(time.monotonic())))
        worker.kill()
        self.count(worker)
        self.workers.remove(worker)

    def dispatch(self, worker):
        """Give an idle worker the next submission, if any is left."""
        worker.job = None
        if self.pending:
            index = self.pending.popleft()
            try:
                worker.send(index, self.paths[index], self.ids[index])
            except OSError:  # the worker died after its last result: another one grades this submission
                self.pending.appendleft(index)
                worker.job = None

    def top_up(self):
        """Keep `jobs` workers while submissions are waiting, and give every idle one some work."""
        for worker in self.workers:
            if worker.job is None and worker.process.is_alive():
                self.dispatch(worker)
        while self.pending and len(self.workers) < self.jobs:
            self.summary.workers_started += 1
            worker = _Worker(self.context, self.options, self.reports, self.log_dir, self.summary.workers_started,
                             self.grader, self.training_slots)
            self.workers.append(worker)
            self.dispatch(worker)


def grade_batch(paths, *, jobs=None, options=None, reports=None, gradebook=None, progress=None, grader=grade_one,
                submission_seconds=None, ids=None, training_slots=TRAINING_SLOTS):
    """Grade every submission with `jobs` warm workers; return a BatchSummary with results in input order.

    training_slots: training runs that may run at once (0: no limit); see TrainingSlots.
    ids: the submission id of each path (default: batch_ids(paths)); grade a subset of a folder with the ids
    of the whole folder, so that an id does not depend on which students were re-graded.
    grader(path, options, grading, reports, submission) grades one submission inside a worker with the worker's
    Grader (a module-level function, so the worker can import it); submission_seconds is how long one may take
    before its worker is stopped. The gradebook CSV, if given, grows row by row as results come in and ends in
    submission order.
    """
    from grader.options import GradingOptions

    options = options or GradingOptions()
    paths = [Path(path) for path in paths]
    started = time.monotonic()
    book = Gradebook(gradebook)
    if progress:
        progress.start(len(paths))
    scheduler = Scheduler(paths, jobs=max(1, min(jobs or os.cpu_count() or 1, len(paths) or 1)), options=options,
                          reports=reports, grader=grader, progress=progress, gradebook=book, ids=ids,
                          training_slots=training_slots,
                          deadline_seconds=submission_seconds or submission_deadline(options))
    try:
        summary = scheduler.run()
    finally:
        if progress:
            progress.close()
    book.close(summary.results)
    summary.seconds = round(time.monotonic() - started, 2)
    return summary
