"""The class summary as text: a self-contained HTML page and the same in Markdown.

`to_html` renders the page (the histogram drawn with matplotlib and embedded as a base64 PNG, no external
resources), `to_markdown` the same with the histogram as a text bar chart. grader/summary.py computes the
ClassSummary they render; grader/store.py writes them.
"""

import base64
import html
import io

from grader.render.common import TITLE, points
from grader.render.escape import md_inline
from grader.summary import ClassSummary

HTML_NAME = "summary.html"
MARKDOWN_NAME = "summary.md"
HISTOGRAM_BINS = 10
HISTOGRAM_FIGSIZE = (8, 3.2)
HISTOGRAM_DPI = 100
HISTOGRAM_ALT = "Histogram of the class's scores"
MESSAGE_CHARS = 1200     # a failure message is shown whole up to this length, then cut


def histogram_edges(max_score: float, bins: int = HISTOGRAM_BINS) -> list:
    """Return the bin edges of the score histogram: `bins` equal bins from 0 to the maximum score."""
    top = max_score if max_score > 0 else 1.0
    return [top * index / bins for index in range(bins + 1)]


def histogram_counts(scores, max_score: float, bins: int = HISTOGRAM_BINS) -> list:
    """Return how many scores fall in each bin (the last bin includes full marks)."""
    edges = histogram_edges(max_score, bins)
    counts = [0] * bins
    for score in scores:
        index = next((i for i in range(bins) if score < edges[i + 1]), bins - 1)
        counts[index] += 1
    return counts


def histogram_figure(summary: ClassSummary):
    """Return the matplotlib figure of the score histogram, with the mean and median marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=HISTOGRAM_FIGSIZE, layout="constrained")
    axes = figure.subplots()
    edges = histogram_edges(summary.max_score)
    axes.hist(list(summary.scores.values()), bins=edges, color="tab:blue", edgecolor="white")
    if summary.scores:
        axes.axvline(summary.mean, color="tab:orange", linestyle="--", label=f"mean {summary.mean:.1f}")
        axes.axvline(summary.median, color="tab:green", linestyle=":", label=f"median {summary.median:.1f}")
        axes.legend(loc="upper left")
    axes.set_xlim(0, edges[-1] * 1.02)  # a little room, so a line at full marks stays visible
    axes.set_xticks(edges, [f"{edge:g}" for edge in edges])
    axes.set_xlabel(f"score (points out of {points(summary.max_score)})")
    axes.set_ylabel("students")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"Scores of {len(summary.scores)} graded submissions")
    return figure


def histogram_png(summary: ClassSummary) -> bytes:
    """Return the score histogram as PNG bytes."""
    buffer = io.BytesIO()
    histogram_figure(summary).savefig(buffer, format="png", dpi=HISTOGRAM_DPI)
    return buffer.getvalue()


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
           (f'<p class="lead">{summary.submissions} submissions: {len(summary.scores)} graded, '
           f"{len(summary.errors)} could not be graded.</p>"),
           '<div class="figures">',
           f'<p class="figure">Mean<b>{points(round(summary.mean, 1))} / {points(summary.max_score)}</b></p>',
           f'<p class="figure">Median<b>{points(round(summary.median, 1))} / {points(summary.max_score)}</b></p>',
           (f'<p class="figure">Full marks<b>{sum(s >= summary.max_score for s in summary.scores.values())}'
           f"</b></p></div>"),
           '<h2 id="histogram">Score distribution</h2>',
           f'<img id="histogram-image" alt="{HISTOGRAM_ALT}" src="data:image/png;base64,{image}">']

    out += ['<h2 id="parts">Parts</h2>', ('<table id="parts-table"><thead><tr><th>Part</th><th class="num">Mean</th>'
            '<th class="num">Median</th><th class="num">Max</th><th class="num">Full marks</th></tr></thead><tbody>')]
    out += [f'<tr><td><code>{e(p.part)}</code></td><td class="num">{p.mean:.2f}</td>'
            f'<td class="num">{points(round(p.median, 2))}</td><td class="num">{points(p.max_score)}</td>'
            f'<td class="num">{p.full_marks} of {p.count}</td></tr>' for p in summary.parts]
    out.append("</tbody></table>")

    failing = [t for t in summary.tests if t.failed]
    out += ['<h2 id="tests">Tests, most failed first</h2>',
            ('<table id="tests-table"><thead><tr><th>Test</th><th class="num">Points</th>'
            '<th class="num">Failed</th><th>Failure rate</th></tr></thead><tbody>')]
    out += [f"<tr><td>{e(t.name)}</td><td class=\"num\">{points(t.max_score)}</td>"
            f'<td class="num">{t.failed} of {t.ran}</td><td><span class="bar"><span style="width:'
            f'{100 * t.failure_rate:.0f}%"></span></span> {100 * t.failure_rate:.0f}%</td></tr>'
            for t in failing]
    out.append("</tbody></table>")
    if len(failing) < len(summary.tests):
        out.append(f"<p>The other {len(summary.tests) - len(failing)} tests passed for every graded submission.</p>")

    out += ['<h2 id="mistakes">Most common mistakes</h2>']
    if summary.mistakes:
        out += [('<table id="mistakes-table"><thead><tr><th class="num">Students</th><th>Test and message</th>'
                "<th>Who</th></tr></thead><tbody>")]
        out += [f'<tr><td class="num">{len(m.students)}</td><td><b>{e(m.test)}</b><pre>{e(cut(m.message))}</pre>'
                f"</td><td>{e(', '.join(m.students))}</td></tr>" for m in summary.mistakes]
        out.append("</tbody></table>")
    else:
        out.append("<p>No test failed.</p>")

    if summary.failed_all:
        out += ['<h2 id="failed-all">Failed every test</h2>', ('<table id="failed-all-table"><thead><tr>'
                "<th>Submission</th><th>First failure</th></tr></thead><tbody>")]
        out += [f"<tr><td>{e(who)}</td><td><pre>{e(cut(why))}</pre></td></tr>"
                for who, why in summary.failed_all.items()]
        out.append("</tbody></table>")
    if summary.errors:
        out += ['<h2 id="errors">Could not be graded</h2>', ('<table class="errors" id="errors-table"><thead><tr>'
                "<th>Submission</th><th>Why</th></tr></thead><tbody>")]
        out += [f"<tr><td>{e(who)}</td><td><pre>{e(cut(why))}</pre></td></tr>" for who, why in summary.errors.items()]
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def to_markdown(summary: ClassSummary) -> str:
    """Render the summary in Markdown, the histogram as a text bar chart."""
    lines = [f"# {TITLE}: class summary", "",
             (f"{summary.submissions} submissions: {len(summary.scores)} graded, {len(summary.errors)} could not "
             f"be graded. Mean {summary.mean:.1f}, median {summary.median:.1f} of {points(summary.max_score)} "
             "points."), "", "## Score distribution", "", "```text"]
    edges = histogram_edges(summary.max_score)
    for index, count in enumerate(histogram_counts(summary.scores.values(), summary.max_score)):
        closing = "]" if index == len(edges) - 2 else ")"
        span = f"[{edges[index]:g}, {edges[index + 1]:g}{closing}"
        lines.append(f"{span:>14} {'#' * count} {count}")
    lines += ["```", "", "## Parts", "", "| Part | Mean | Median | Max | Full marks |",
              "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| `{p.part}` | {p.mean:.2f} | {points(round(p.median, 2))} | {points(p.max_score)} | "
              f"{p.full_marks} of {p.count} |" for p in summary.parts]
    lines += ["", "## Tests, most failed first", "", "| Test | Points | Failed | Rate |",
              "| --- | ---: | ---: | ---: |"]
    failing = [t for t in summary.tests if t.failed]
    lines += [f"| {md_inline(t.name)} | {points(t.max_score)} | {t.failed} of {t.ran} | "
              f"{100 * t.failure_rate:.0f}% |" for t in failing]
    if len(failing) < len(summary.tests):
        lines += ["", f"The other {len(summary.tests) - len(failing)} tests passed for every graded submission."]
    lines += ["", "## Most common mistakes", ""]
    if not summary.mistakes:
        lines.append("No test failed.")
    for rank, mistake in enumerate(summary.mistakes, 1):
        lines += [(f"{rank}. **{md_inline(mistake.test)}**: {len(mistake.students)} students "
                  f"({md_inline(', '.join(mistake.students))})"), "",
                  *[f"   > {md_inline(line)}" for line in cut(mistake.message).splitlines()], ""]
    if summary.failed_all:
        lines += ["", "## Failed every test", ""]
        lines += [f"- {md_inline(who)}: {md_inline(cut(why))}" for who, why in summary.failed_all.items()]
    if summary.errors:
        lines += ["", "## Could not be graded", ""]
        lines += [f"- {md_inline(who)}: {md_inline(cut(why))}" for who, why in summary.errors.items()]
    return "\n".join(lines).rstrip("\n") + "\n"


def cut(text, limit=MESSAGE_CHARS):
    """Return text, cut with an ellipsis when longer than limit."""
    text = str(text)
    return text if len(text) <= limit else text[:limit].rstrip() + " …"

