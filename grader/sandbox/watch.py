"""Follow one runner child: read its result pipe and its output, track its phase, stop it when a limit is hit.

The child's events are untrusted data: each line is bounded and validated (parse_event) before it changes anything.
"""

import os
import selectors
import subprocess
import time
from dataclasses import dataclass

from grader import protocol
from grader.checker.checks.output import without_tensorflow_startup
from grader.lesson import manifest
from grader.protocol import CRASHED, OK, RUNNER_STATUSES, TIMEOUT, FunctionOutcome

API = manifest.API
MAX_RESULT_BYTES = 64 * 2**20
MAX_MESSAGE_CHARS = 2000
POLL_SECONDS = 0.1
MEMORY_POLL_SECONDS = 0.25


# Messages, in the words a report shows. `where` is DURING_IMPORT or IN_FUNCTION.
DURING_IMPORT = "during import"
IN_FUNCTION = "in {name}"
BETWEEN_FUNCTIONS = "between functions"
TIMED_OUT_IMPORT = "timed out after {seconds} while importing the submission"
TIMED_OUT = "timed out after {seconds} in {name}"
TOTAL_TIMED_OUT = "timed out: the probe's total limit of {seconds} ran out {where}"
EXITED = "exited with status {code} {where}"
KILLED = "killed by signal {signal} {where}"
MEMORY_EXCEEDED = "memory limit of {limit} exceeded {where}"
RESULTS_TOO_BIG = "sent more than {limit} of results {where}"
OUTPUT_TRUNCATED = "\n[... {count:,} more characters of output not shown]\n"


def format_seconds(seconds):
    """Return '60 s' or '2.5 s'."""
    return f"{seconds:g} s"


def format_bytes(size):
    """Return '4 GiB', '512 MiB' or '100 bytes'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


class Output:
    """Keep the first output_chars characters the probe printed and count the rest."""

    def __init__(self, limit):
        self.limit = limit
        self.chunks, self.kept, self.dropped = [], 0, 0

    def add(self, data):
        """Keep what fits, count what does not."""
        room = max(self.limit - self.kept, 0)
        self.chunks.append(data[:room])
        self.kept += min(len(data), room)
        self.dropped += max(len(data) - room, 0)

    def note(self, text):
        """Add a line from the launcher itself, outside the limit."""
        self.chunks.append(text.encode())

    def text(self):
        """Return the kept output without TensorFlow's start-up log, with a note of how much was cut."""
        text = without_tensorflow_startup(b"".join(self.chunks).decode("utf-8", "replace"))
        return text + (OUTPUT_TRUNCATED.format(count=self.dropped) if self.dropped else "")


@dataclass
class Attempt:
    """What one child run reported and how it ended."""

    imported: dict = None        # the runner's "imported" event
    done: dict = None            # name -> FunctionOutcome
    current: str = None          # the function running when it ended, None during import or between
    finished: bool = False       # the runner reported every function
    failure_status: str = ""     # TIMEOUT or CRASHED when it ended badly
    failure_message: str = ""


def parse_event(line, names):
    """Return a validated event dict from one result line, or None for anything malformed."""
    try:
        event = protocol.read_event(line)  # bounded in size and depth (grader.protocol)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    if event["event"] in ("start", "done") and event.get("name") not in names:
        return None
    if event["event"] == "done" and event.get("status") not in RUNNER_STATUSES:
        return None
    return event


def outcome_from_done(event, limits, where):
    """Return the FunctionOutcome a done event describes."""
    message = event.get("message") if isinstance(event.get("message"), str) else ""
    seconds = event.get("seconds") if isinstance(event.get("seconds"), (int, float)) else 0.0
    status = event["status"]
    if event.get("exception") == "MemoryError":
        status, message = CRASHED, MEMORY_EXCEEDED.format(limit=format_bytes(limits.memory_bytes), where=where)
    substituted = event.get("substituted") if isinstance(event.get("substituted"), dict) else {}
    substituted = {name: str(why)[:40] for name, why in substituted.items() if name in API}
    return FunctionOutcome(event["name"], status, event.get("value") if status == OK else None,
                           message[:MAX_MESSAGE_CHARS], float(seconds), substituted)


def wait_for_exit(process, timeout):
    """Return the exit status of a child (subprocess.Popen or ZygoteChild), waiting at most timeout seconds."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


class RunnerWatch:
    """Follow one runner child: read its pipes, track its phase, and stop it when a limit is hit."""

    def __init__(self, process, result_fd, limits, processes, output, total_deadline):
        self.process, self.result_fd, self.limits = process, result_fd, limits
        self.processes, self.output, self.total_deadline = processes, output, total_deadline
        self.attempt = Attempt(done={})
        self.buffer, self.result_bytes = b"", 0
        self.phase_started = time.monotonic()
        self.selector = selectors.DefaultSelector()
        for fd in (result_fd, process.stdout.fileno()):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)

    def where(self):
        """Return where the child is: during import, in a function, or between functions."""
        if self.attempt.imported is None:
            return DURING_IMPORT
        if self.attempt.current:
            return IN_FUNCTION.format(name=self.attempt.current)
        return BETWEEN_FUNCTIONS

    def phase_limit(self):
        """Return the time limit of the current phase."""
        return self.limits.import_seconds if self.attempt.imported is None else self.limits.function_seconds

    def handle(self, event):
        """Update the phase and the outcomes from one event."""
        kind = event["event"]
        if kind == "imported" and self.attempt.imported is None:
            self.attempt.imported = event
        elif kind == "start" and self.attempt.imported is not None:
            self.attempt.current = event["name"]
        elif kind == "done" and self.attempt.imported is not None:
            where = IN_FUNCTION.format(name=event["name"])
            self.attempt.done[event["name"]] = outcome_from_done(event, self.limits, where)
            self.attempt.current = None
        elif kind == "finished":
            self.attempt.finished = True
        else:
            return
        self.phase_started = time.monotonic()

    def read(self, fd):
        """Read what one pipe has; return False at end of file."""
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(fd)
            return False
        if fd != self.result_fd:
            self.output.add(data)
            return True
        self.result_bytes += len(data)
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        for line in lines:
            event = parse_event(line, API)
            if event:
                self.handle(event)
        return True

    def drain(self):
        """Read everything the pipes hold now, without waiting for writers that may never close them."""
        for key in list(self.selector.get_map().values()):
            while self.read(key.fd):
                try:
                    if not self.selector.select(0):
                        break
                except (OSError, ValueError):
                    break

    def fail(self, status, message):
        """Record why the child was stopped and kill it."""
        self.attempt.failure_status, self.attempt.failure_message = status, message
        self.processes.kill_all()

    def check_limits(self, now):
        """Stop the child when a time or memory limit is hit; return True if it was stopped."""
        where = self.where()
        if now > self.total_deadline:
            self.fail(TIMEOUT, TOTAL_TIMED_OUT.format(seconds=format_seconds(self.limits.total_seconds), where=where))
        elif now - self.phase_started > self.phase_limit():
            seconds = format_seconds(self.phase_limit())
            message = (TIMED_OUT_IMPORT.format(seconds=seconds) if where == DURING_IMPORT
                       else TIMED_OUT.format(seconds=seconds, name=self.attempt.current or BETWEEN_FUNCTIONS))
            self.fail(TIMEOUT, message)
        elif self.result_bytes > MAX_RESULT_BYTES:
            self.fail(CRASHED, RESULTS_TOO_BIG.format(limit=format_bytes(MAX_RESULT_BYTES), where=where))
        else:
            return False
        return True

    def check_memory(self):
        """Stop the child when its process tree holds more than the memory limit; return True if stopped."""
        if self.processes.poll(self.process.pid) <= self.limits.memory_bytes:
            return False
        self.fail(CRASHED, MEMORY_EXCEEDED.format(limit=format_bytes(self.limits.memory_bytes), where=self.where()))
        return True

    def describe_exit(self, code):
        """Record how the child ended on its own when it had not finished."""
        if self.attempt.finished:
            return
        where = self.where()
        if code < 0:
            self.attempt.failure_message = KILLED.format(signal=-code, where=where)
        else:
            self.attempt.failure_message = EXITED.format(code=code, where=where)
        self.attempt.failure_status = CRASHED

    def watch(self):
        """Follow the child to its end; return the Attempt."""
        next_memory_check = 0.0
        try:
            while True:
                for key, _mask in self.selector.select(POLL_SECONDS):
                    self.read(key.fd)
                # Both pipes at end of file: the child is exiting; wait for it rather than sleep a poll interval.
                code = self.process.poll() if self.selector.get_map() else wait_for_exit(self.process, POLL_SECONDS)
                if code is not None:
                    self.drain()
                    self.describe_exit(code)
                    break
                now = time.monotonic()
                if self.check_limits(now):
                    break
                if now >= next_memory_check:
                    next_memory_check = now + MEMORY_POLL_SECONDS
                    if self.check_memory():
                        break
        finally:
            self.processes.kill_all()
            self.process.wait()
            self.selector.close()
            os.close(self.result_fd)
            self.process.stdout.close()
        return self.attempt
