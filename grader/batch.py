"""Grade a whole class: every entry of a folder is one submission, graded in isolation by warm workers.

Most of the time of one `grader grade` goes to importing TensorFlow (in the checker and again in the
probe's child) and to the training check. A batch keeps `jobs` trusted worker processes alive: each one
imports Keras and the checker once, then grades submissions one after another, each in its own sandboxed
probe child as `grader grade` does. The training check goes through a TrainingCache, so each distinct
model is trained once per class (and once across runs, with the on-disk cache).

Training runs take a slot (TrainingSlots): TensorFlow gives each one a thread per core, so two at once would fight
over the cores; a worker that needs one while another trains waits, and its training then runs with the very
thread configuration of `grader grade` (the accuracy depends on it). Probes and hidden tests run meanwhile.

The main process only hands out submissions, watches the workers, and writes the gradebook. A worker
that dies or runs past a submission's deadline is killed with its whole process tree and replaced;
that submission's row gets status "error" and the batch goes on.
"""

import contextlib
import fcntl
import multiprocessing
import os
import signal
import tempfile
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from grader.exports import GRADESCOPE_METADATA, submission_ids
from grader.results import GradingResults, Status
from grader.store import Gradebook, report_folder, write_reports

ERROR = Status.ERROR
READY = "ready"                # a worker's first message: TensorFlow is imported, deadlines start now
SKIPPED_NAMES = ("__pycache__", "__MACOSX", GRADESCOPE_METADATA)  # a Gradescope export's metadata: no student
WORKER_START_SECONDS = 120     # a fresh worker imports TensorFlow before its first submission
CHECK_SECONDS = 300            # the hidden tests without the training check, generously
TRAINING_SECONDS = 600         # the training check's own limit is lower; this only catches a stuck worker
POLL_SECONDS = 0.5
TRAINING_SLOTS = 1             # training runs at once per batch: each uses every core, as `grader grade` does
SLOT_POLL_SECONDS = 0.1
# The workers' time by phase, in the order the closing line names them.
PHASES = ("probe", "training", "waiting for a training slot", "hidden tests and reports")
LOG_TAIL_CHARS = 1500

# Messages of error rows, in the words the gradebook and the report show.
WORKER_DIED = "The grader's worker process died (exit status {code}) while grading this submission.{log}"
WORKER_TIMED_OUT = ("Grading this submission took more than {seconds:g} s; the grader's worker was stopped "
                    "and the batch went on.")
GRADING_RAISED = "The grader failed on this submission: {error}"
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


# --- shards: one batch grades a deterministic 1/N of a folder; `grader merge` joins them ---------------------

SHARD_SUFFIX = ".shard.json"   # beside a shard's gradebook: grades.csv -> grades.shard.json
BAD_SHARD = "--shard expects K/N, two whole numbers with 1 <= K <= N. Received: {received!r}"


def parse_shard(text):
    """Return (k, n) of a shard written K/N; raise ValueError saying what was expected."""
    try:
        k, n = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ValueError(BAD_SHARD.format(received=text)) from None
    if not 1 <= k <= n:
        raise ValueError(BAD_SHARD.format(received=text))
    return k, n


def shard_of(name, count):
    """Return the shard (1 to count) of a folder entry: a hash of its name alone.

    A hash rather than every N-th of the sorted names: a student's shard stays where it was when late
    submissions join the folder, so a shard re-run grades the same students and finds their cache entries.
    """
    import hashlib

    return int.from_bytes(hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()[:8], "big") % count + 1


def shard_manifest_path(gradebook):
    """Return where a shard's manifest goes: beside its gradebook, grades.csv -> grades.shard.json."""
    gradebook = Path(gradebook)
    return gradebook.with_name(gradebook.stem + SHARD_SUFFIX)


def write_shard_manifest(gradebook, *, shard, count, total, graded, reports):
    """Write what `grader merge` needs of a shard: which one, the folder's size, its (entry, id) pairs, where."""
    import json

    from grader.store import atomic_write

    path = shard_manifest_path(gradebook)
    folder = path.parent.resolve()
    data = {"shard": shard, "of": count, "folder_entries": total,
            "submissions": [{"entry": name, "id": submission} for name, submission in graded],
            "gradebook": os.path.relpath(Path(gradebook).resolve(), folder),
            "reports": os.path.relpath(Path(reports).resolve(), folder) if reports else None}
    atomic_write(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def submission_deadline(options):
    """Return the seconds one submission may take in a worker before the worker is stopped."""
    return options.limits.total_seconds + CHECK_SECONDS + (TRAINING_SECONDS if options.training else 0)


def error_results(submission, message, seconds=0.0):
    """Return the results row of a submission the grader could not grade."""
    return GradingResults(submission=submission, tests=[], execution_time=round(seconds, 2), notes=[message],
                          status=ERROR)


# --- the worker (a trusted process: it never imports student code) --------------------------------------


def make_trainer(options):
    """Return the trainer the checker calls: the training check behind a cache, or None without training."""
    from grader.grade import make_trainer as trainer_for

    return trainer_for(options)


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


WORKER_ZYGOTE = None  # the probe zygote of this worker process (grader.sandbox.zygote.Zygote), if any
WORKER_KIT = None     # the kit's fingerprint when this worker started: every grade verifies the kit against it


def grade_one(path, options, trainer, reports=None, submission=None):
    """Grade one submission and write its reports; return its GradingResults, an error row if grading raised."""
    from grader.grade import grade, submission_id

    started = time.monotonic()
    submission = submission or submission_id(path)
    report_dir = report_folder(reports, submission) if reports else None
    try:
        results = grade(path, options, report_dir=report_dir, trainer=trainer, submission=submission,
                        zygote=WORKER_ZYGOTE, kit=WORKER_KIT)
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

    The training slots' lock files live beside the worker's log, in the batch's own folder.
    """
    # Keras and TensorFlow chatter would tear the progress bar; keep it in the worker's log instead.
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle
    global WORKER_ZYGOTE, WORKER_KIT
    limit_memory(getattr(options, "worker_memory_bytes", None))
    from grader.sandbox import isolation

    isolation.give_probes_a_uid_per_process()  # as root: a uid per worker, so one probe's kill_uid spares the others'
    clock = PhaseClock()
    if grader is grade_one:
        from grader import grade as grading

        grading.probe_submission = clock.timed("probe", grading.probe_submission)  # grade() looks it up per call
        from grader.checker.inputs import fingerprint
        from grader.grade import warm_up_keras

        WORKER_KIT = fingerprint()

        if options.zygote:
            from grader.sandbox.zygote import Zygote

            WORKER_ZYGOTE = Zygote()
            WORKER_ZYGOTE.launch()  # it imports Keras while this process does
        warm_up_keras()
    trainer = schedule_training(make_trainer(options), TrainingSlots(Path(log_path).parent, training_slots), clock)
    connection.send(READY)
    try:
        serve_jobs(connection, options, reports, grader, trainer, clock)
    finally:
        if WORKER_ZYGOTE is not None:
            WORKER_ZYGOTE.close()


def serve_jobs(connection, options, reports, grader, trainer, clock=None):
    """Grade the submissions the batch sends until it sends None or goes away."""
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
            results = grader(path, options, trainer, reports, submission)
        except Exception as error:  # last resort: grade_one already turns grading errors into rows
            results = error_results(submission, GRADING_RAISED.format(error=repr(error)[:500]),
                                    time.monotonic() - started)
        clock.busy += time.monotonic() - started
        connection.send((index, results, (*_cache_counts(trainer), clock.report())))


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
    grader(path, options, trainer, reports, submission) grades one submission inside a worker (a module-level
    function, so the worker can import it); submission_seconds is how long one may take before its worker is
    stopped. The gradebook CSV, if given, grows row by row as results come in and ends in submission order.
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
