"""The batch's terminal and stdout views: a progress line per submission, and every report in one document."""

import json
import sys
import time

from grader.render import FORMATS, UNKNOWN_FORMAT
from grader.render.common import points
from grader.render.escape import terminal_safe
from grader.render.gradescope_json import to_dict
from grader.render.junit import to_junit
from grader.render.markdown import to_markdown
from grader.render.text import to_text
from grader.results import ERROR, SHOWN_TO_INSTRUCTOR

BATCH_FORMATS = tuple(fmt for fmt in FORMATS if fmt != "html")  # what render_all prints on stdout


# --- progress on stderr -------------------------------------------------------------------------------------


class Progress:
    """Show how far a batch is: a redrawn bar on a terminal, one plain line per submission otherwise."""

    BAR_WIDTH = 24

    def __init__(self, stream=None, *, tty=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = self.count = 0
        self.started = time.monotonic()
        self.last = ""

    def start(self, total):
        """Begin counting total submissions."""
        self.total, self.count, self.started = total, 0, time.monotonic()
        self.tick()

    def done(self, results):
        """Report one finished submission."""
        self.count += 1
        line = f"[{self.count}/{self.total}] {describe(results)}"
        if self.tty:
            self.last = line
            self._draw()
        else:
            print(line, file=self.stream, flush=True)

    def tick(self):
        """Redraw the bar (its clock moves even while nothing finishes)."""
        if self.tty:
            self._draw()

    def close(self):
        """End the bar's line."""
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self):
        filled = self.BAR_WIDTH * self.count // max(self.total, 1)
        bar = "#" * filled + "-" * (self.BAR_WIDTH - filled)
        elapsed = time.monotonic() - self.started
        text = f"\r[{bar}] {self.count}/{self.total}  {elapsed:.0f} s  {self.last}"
        self.stream.write(text[:160] + "\x1b[K")
        self.stream.flush()


def describe(results):
    """Return the progress line of one submission: 'alice.py 87/100 (6.2 s)' or 'bob.zip error: ...'."""
    name = terminal_safe(results.submission)
    if results.status == ERROR:
        note = str(results.notes[0]) if results.notes else "grading failed"
        return f"{name} error: {terminal_safe(note.splitlines()[0])[:120]} ({results.execution_time:.1f} s)"
    return f"{name} {points(results.score)}/{points(results.max_score)} ({results.execution_time:.1f} s)"


# --- several reports on stdout --------------------------------------------------------------------------


def render_all(results_list, fmt):
    """Render every submission's report in one document of a format (a JSON list, one JUnit <testsuites>).

    The batch is the instructor's: the CI formats show every test, whatever its visibility. HTML is one page per
    student, written under --reports, so it is not one of BATCH_FORMATS.
    """
    if fmt not in BATCH_FORMATS:
        raise ValueError(UNKNOWN_FORMAT.format(expected=", ".join(BATCH_FORMATS), received=fmt))
    if fmt == "json":
        return json.dumps([to_dict(results) for results in results_list], indent=2, ensure_ascii=False) + "\n"
    if fmt == "junit":
        suites = []
        for results in results_list:
            text = to_junit(results, shown=SHOWN_TO_INSTRUCTOR)
            suites.append(text[text.index("?>") + 2:].strip() if text.startswith("<?xml") else text.strip())
        body = "\n".join(suites)
        return f"<?xml version='1.0' encoding='utf-8'?>\n<testsuites>\n{body}\n</testsuites>\n"
    if fmt == "markdown":
        return "\n---\n\n".join(to_markdown(results, shown=SHOWN_TO_INSTRUCTOR) for results in results_list)
    return ("\n" + "=" * 72 + "\n\n").join(to_text(results) for results in results_list)
