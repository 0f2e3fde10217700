"""The class summary: what an instructor asks first after a deadline, from the GradingResults of a batch.

`summarise` computes it (score histogram, per-part mean and median, per-test failure rate, the most common
failure messages with the students who got them); `to_html` renders a self-contained page (the histogram
drawn with matplotlib and embedded as a base64 PNG, no external resources) and `to_markdown` the same in
Markdown; `write_summary` writes both into a folder. `load_results` reads back the results.json files a
batch wrote under --reports, so a summary can be rebuilt after re-grading a few students.
"""

import base64
import html
import io
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from grader import extra_credit
from grader.report import PARTS, PASSED, TITLE, GradingResults, _md_inline, _points
from grader.wording import plural

HTML_NAME = "summary.html"
MARKDOWN_NAME = "summary.md"
TOP_MISTAKES = 10
HISTOGRAM_BINS = 10
HISTOGRAM_FIGSIZE = (8, 3.2)
HISTOGRAM_DPI = 100
HISTOGRAM_ALT = "Histogram of the class's scores"
MESSAGE_CHARS = 1200     # a failure message is shown whole up to this length, then cut


@dataclass
class PartStats:
    """One part of the lesson across the class."""

    part: str
    max_score: float
    mean: float
    median: float
    full_marks: int          # students with every point of the part
    count: int               # students graded on this part


@dataclass
class TestStats:
    """One hidden test across the class (named so pytest does not collect it)."""

    __test__ = False
    name: str
    part: str
    max_score: float
    failed: int
    ran: int

    @property
    def failure_rate(self):
        return self.failed / self.ran if self.ran else 0.0


@dataclass
class Mistake:
    """One failure message, the tests that gave it, and everyone who got it."""

    tests: list
    message: str
    students: list = field(default_factory=list)

    @property
    def test(self):
        """Return the tests as one line: the first, and how many more gave the same message."""
        more = f" (and {len(self.tests) - 1} more tests)" if len(self.tests) > 1 else ""
        return self.tests[0] + more


@dataclass
class ClassSummary:
    """Everything the summary page shows."""

    submissions: int
    scores: dict                    # id -> score, graded submissions only
    max_score: float
    parts: list                     # PartStats, in PARTS order
    tests: list                     # TestStats, most failed first
    mistakes: list                  # Mistake, most common first
    errors: dict                    # id -> why grading could not finish
    failed_all: dict = field(default_factory=dict)  # id -> first failure, for submissions that passed nothing

    @property
    def mean(self):
        return statistics.fmean(self.scores.values()) if self.scores else 0.0

    @property
    def median(self):
        return statistics.median(self.scores.values()) if self.scores else 0.0


def summarise(results_list: list, *, top: int = TOP_MISTAKES, names: dict | None = None) -> ClassSummary:
    """Return the class summary of a batch's GradingResults; names maps submission ids to student names."""
    names = names or {}

    def label(results):
        return names.get(results.submission, results.submission)

    graded = [results for results in results_list if results.status == "graded"]
    errors = {label(results): (results.notes[0] if results.notes else "no reason recorded")
              for results in results_list if results.status != "graded"}
    scores = {label(results): results.score for results in graded}
    max_score = max((results.max_score for results in graded), default=0.0)

    parts = []
    for part in PARTS:
        totals = [results.part_scores()[part] for results in graded if any(t.part == part for t in results.tests)]
        if not totals:
            continue
        part_max = max(maximum for _, maximum in totals)
        got = [score for score, _ in totals]
        parts.append(PartStats(part=part, max_score=part_max, mean=statistics.fmean(got),
                               median=statistics.median(got), count=len(got),
                               full_marks=sum(score >= maximum for score, maximum in totals)))

    # A submission that passed nothing (it crashed at import, say) has one cause, not one mistake per test:
    # it is listed once, and kept out of the mistakes so that they show what the rest of the class got wrong.
    failed_all = {label(results): (results.tests[0].output.strip() or "(no message)") for results in graded
                  if results.tests and not any(test.status == PASSED for test in results.tests)}
    tests, mistakes = {}, {}
    for results in graded:
        for test in results.tests:
            stats = tests.setdefault(test.name, TestStats(test.name, test.part, test.max_score, 0, 0))
            stats.ran += 1
            if test.status != PASSED:
                stats.failed += 1
                if label(results) in failed_all:
                    continue
                # Grouped by message: one cause (a builder that times out) fails several tests the same way.
                message = test.output.strip() or "(no message)"
                mistake = mistakes.setdefault(message, Mistake([], message))
                for values, value in ((mistake.tests, test.name), (mistake.students, label(results))):
                    if value not in values:
                        values.append(value)
    order = {name: index for index, name in enumerate(tests)}
    ranked_tests = sorted(tests.values(), key=lambda t: (-t.failure_rate, order[t.name]))
    ranked_mistakes = sorted(mistakes.values(), key=lambda m: -len(m.students))[:top]
    return ClassSummary(submissions=len(results_list), scores=scores, max_score=max_score, parts=parts,
                        tests=ranked_tests, mistakes=ranked_mistakes, errors=errors, failed_all=failed_all)


def histogram_edges(max_score: float, bins: int = HISTOGRAM_BINS, scores=()) -> list:
    """Return the bin edges of the score histogram: `bins` equal bins from 0 to the maximum score, and as many more
    of the same width as the highest score needs (a bonus takes a score past the maximum: extra credit)."""
    full = max_score if max_score > 0 else 1.0
    width = full / bins
    top = extra_credit.histogram_top(full, scores)
    count = bins + max(0, math.ceil((top - full) / width - 1e-9))
    return [width * index for index in range(count + 1)]


def histogram_counts(scores, max_score: float, bins: int = HISTOGRAM_BINS) -> list:
    """Return how many scores fall in each bin (the last bin includes its upper edge: full marks, or the top)."""
    scores = list(scores)
    edges = histogram_edges(max_score, bins, scores)
    last = len(edges) - 2
    counts = [0] * (last + 1)
    for score in scores:
        index = next((i for i in range(last + 1) if score < edges[i + 1]), last)
        counts[index] += 1
    return counts


def histogram_figure(summary: ClassSummary):
    """Return the matplotlib figure of the score histogram, with the mean and median marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=HISTOGRAM_FIGSIZE, layout="constrained")
    axes = figure.subplots()
    edges = histogram_edges(summary.max_score, scores=summary.scores.values())
    axes.hist(list(summary.scores.values()), bins=edges, color="tab:blue", edgecolor="white")
    if summary.scores:
        axes.axvline(summary.mean, color="tab:orange", linestyle="--", label=f"mean {summary.mean:.1f}")
        axes.axvline(summary.median, color="tab:green", linestyle=":", label=f"median {summary.median:.1f}")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)  # beside the bars, never on them
    axes.set_xlim(0, edges[-1] * 1.02)  # a little room, so a line at full marks stays visible
    axes.set_xticks(edges, [f"{edge:g}" for edge in edges])
    axes.set_xlabel(f"score (points out of {_points(summary.max_score)})")
    axes.set_ylabel("students")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"Scores of {plural(len(summary.scores), 'graded submission')}")
    return figure


def histogram_png(summary: ClassSummary) -> bytes:
    """Return the score histogram as PNG bytes."""
    buffer = io.BytesIO()
    histogram_figure(summary).savefig(buffer, format="png", dpi=HISTOGRAM_DPI)
    return buffer.getvalue()


# --- HTML -------------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #222; line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.lead { color: #555; margin-top: 0; }
.figures { display: flex; gap: 2rem; flex-wrap: wrap; }
.figure { margin: 0; font-size: 1.1rem; } .figure b { display: block; font-size: 1.8rem; }
table { border-collapse: collapse; width: 100%; margin-top: 0.5rem; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num, th.num { text-align: right; white-space: nowrap; }
.bar { background: #eee; width: 120px; height: 0.8rem; display: inline-block; vertical-align: middle; }
.bar span { background: #d9534f; height: 100%; display: block; }
pre { white-space: pre-wrap; margin: 0; font-size: 0.85rem; font-family: ui-monospace, monospace; }
img { max-width: 100%; height: auto; }
.errors td { color: #a94442; }
"""


def to_html(summary: ClassSummary) -> str:
    """Render the summary as a self-contained HTML page (the histogram embedded as a base64 PNG)."""
    e = html.escape
    image = base64.b64encode(histogram_png(summary)).decode("ascii")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(TITLE)}: class summary</title>", f"<style>{STYLE}</style></head><body>",
           f"<h1>{e(TITLE)}: class summary</h1>",
           (f'<p class="lead">{plural(summary.submissions, "submission")}: {len(summary.scores)} graded, '
           f"{len(summary.errors)} could not be graded.</p>"),
           '<div class="figures">',
           f'<p class="figure">Mean<b>{_points(round(summary.mean, 1))} / {_points(summary.max_score)}</b></p>',
           f'<p class="figure">Median<b>{_points(round(summary.median, 1))} / {_points(summary.max_score)}</b></p>',
           (f'<p class="figure">Full marks<b>{sum(s >= summary.max_score for s in summary.scores.values())}'
           f"</b></p></div>"),
           '<h2 id="histogram">Score distribution</h2>',
           f'<img id="histogram-image" alt="{HISTOGRAM_ALT}" src="data:image/png;base64,{image}">']

    out += ['<h2 id="parts">Parts</h2>', ('<table id="parts-table"><thead><tr><th>Part</th><th class="num">Mean</th>'
            '<th class="num">Median</th><th class="num">Max</th><th class="num">Full marks</th></tr></thead><tbody>')]
    out += [f'<tr><td><code>{e(p.part)}</code></td><td class="num">{p.mean:.2f}</td>'
            f'<td class="num">{_points(round(p.median, 2))}</td><td class="num">{_points(p.max_score)}</td>'
            f'<td class="num">{p.full_marks} of {p.count}</td></tr>' for p in summary.parts]
    out.append("</tbody></table>")

    failing = [t for t in summary.tests if t.failed]
    out += ['<h2 id="tests">Tests, most failed first</h2>',
            ('<table id="tests-table"><thead><tr><th>Test</th><th class="num">Points</th>'
            '<th class="num">Failed</th><th>Failure rate</th></tr></thead><tbody>')]
    out += [f"<tr><td>{e(t.name)}</td><td class=\"num\">{_points(t.max_score)}</td>"
            f'<td class="num">{t.failed} of {t.ran}</td><td><span class="bar"><span style="width:'
            f'{100 * t.failure_rate:.0f}%"></span></span> {100 * t.failure_rate:.0f}%</td></tr>'
            for t in failing]
    out.append("</tbody></table>")
    if len(failing) < len(summary.tests):
        out.append(f"<p>The other {plural(len(summary.tests) - len(failing), 'test')} passed for every graded "
                   "submission.</p>")

    out += ['<h2 id="mistakes">Most common mistakes</h2>']
    if summary.mistakes:
        out += [('<table id="mistakes-table"><thead><tr><th class="num">Students</th><th>Test and message</th>'
                "<th>Who</th></tr></thead><tbody>")]
        out += [f'<tr><td class="num">{len(m.students)}</td><td><b>{e(m.test)}</b><pre>{e(_cut(m.message))}</pre>'
                f"</td><td>{e(', '.join(m.students))}</td></tr>" for m in summary.mistakes]
        out.append("</tbody></table>")
    else:
        out.append("<p>No test failed.</p>")

    if summary.failed_all:
        out += ['<h2 id="failed-all">Failed every test</h2>', ('<table id="failed-all-table"><thead><tr>'
                "<th>Submission</th><th>First failure</th></tr></thead><tbody>")]
        out += [f"<tr><td>{e(who)}</td><td><pre>{e(_cut(why))}</pre></td></tr>"
                for who, why in summary.failed_all.items()]
        out.append("</tbody></table>")
    if summary.errors:
        out += ['<h2 id="errors">Could not be graded</h2>', ('<table class="errors" id="errors-table"><thead><tr>'
                "<th>Submission</th><th>Why</th></tr></thead><tbody>")]
        out += [f"<tr><td>{e(who)}</td><td><pre>{e(_cut(why))}</pre></td></tr>" for who, why in summary.errors.items()]
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --- Markdown ---------------------------------------------------------------------------------------------


def to_markdown(summary: ClassSummary) -> str:
    """Render the summary in Markdown, the histogram as a text bar chart."""
    lines = [f"# {TITLE}: class summary", "",
             (f"{plural(summary.submissions, 'submission')}: {len(summary.scores)} graded, {len(summary.errors)} "
             f"could not be graded. Mean {summary.mean:.1f}, median {summary.median:.1f} of "
             f"{_points(summary.max_score)} points."), "", "## Score distribution", "", "```text"]
    edges = histogram_edges(summary.max_score, scores=summary.scores.values())
    for index, count in enumerate(histogram_counts(summary.scores.values(), summary.max_score)):
        closing = "]" if index == len(edges) - 2 else ")"
        span = f"[{edges[index]:g}, {edges[index + 1]:g}{closing}"
        lines.append(f"{span:>14} {'#' * count} {count}")
    lines += ["```", "", "## Parts", "", "| Part | Mean | Median | Max | Full marks |",
              "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| `{p.part}` | {p.mean:.2f} | {_points(round(p.median, 2))} | {_points(p.max_score)} | "
              f"{p.full_marks} of {p.count} |" for p in summary.parts]
    lines += ["", "## Tests, most failed first", "", "| Test | Points | Failed | Rate |",
              "| --- | ---: | ---: | ---: |"]
    failing = [t for t in summary.tests if t.failed]
    lines += [f"| {_md_inline(t.name)} | {_points(t.max_score)} | {t.failed} of {t.ran} | "
              f"{100 * t.failure_rate:.0f}% |" for t in failing]
    if len(failing) < len(summary.tests):
        lines += ["", f"The other {plural(len(summary.tests) - len(failing), 'test')} passed for every graded "
                      "submission."]
    lines += ["", "## Most common mistakes", ""]
    if not summary.mistakes:
        lines.append("No test failed.")
    for rank, mistake in enumerate(summary.mistakes, 1):
        lines += [(f"{rank}. **{_md_inline(mistake.test)}**: {plural(len(mistake.students), 'student')} "
                  f"({_md_inline(', '.join(mistake.students))})"), "",
                  *[f"   > {_md_inline(line)}" for line in _cut(mistake.message).splitlines()], ""]
    if summary.failed_all:
        lines += ["", "## Failed every test", ""]
        lines += [f"- {_md_inline(who)}: {_md_inline(_cut(why))}" for who, why in summary.failed_all.items()]
    if summary.errors:
        lines += ["", "## Could not be graded", ""]
        lines += [f"- {_md_inline(who)}: {_md_inline(_cut(why))}" for who, why in summary.errors.items()]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_summary(results_list: list, folder, *, names: dict | None = None) -> tuple:
    """Write summary.html and summary.md for a batch into folder; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarise(results_list, names=names)
    html_path, markdown_path = folder / HTML_NAME, folder / MARKDOWN_NAME
    html_path.write_text(to_html(summary), encoding="utf-8")
    markdown_path.write_text(to_markdown(summary), encoding="utf-8")
    return html_path, markdown_path


def load_results(reports_folder, name: str = "report.json") -> list:
    """Return the GradingResults of every REPORTS/<id>/report.json a batch wrote, sorted by folder name."""
    found = []
    for path in sorted(Path(reports_folder).glob(f"*/{name}")):
        found.append(GradingResults.from_json(path.read_text(encoding="utf-8")))
    return found


def _cut(text, limit=MESSAGE_CHARS):
    """Return text, cut with an ellipsis when longer than limit."""
    text = str(text)
    return text if len(text) <= limit else text[:limit].rstrip() + " …"

