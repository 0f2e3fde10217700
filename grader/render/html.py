"""The student's feedback page: self-contained HTML, the report folder's pictures embedded."""

import base64
import html
from pathlib import Path

from grader.causes import fold, same_reason_line
from grader.render.common import (
    GRADING_UNFINISHED,
    PRINTED_HEADING,
    TITLE,
    fraction,
    headline_score,
    shown_tests,
)
from grader.render.escape import terminal_safe
from grader.results import GRADED, PASSED, SHOWN_AFTER_PUBLISHED, GradingResults

PICTURE_CAPTIONS = {
    "training_curve": "Accuracy and loss during the training check",
    "first_layer_filters": "Your network's first-layer 3×3 filters after training",
    "feature_maps": "First-layer feature maps of one test image",
}
FEEDBACK_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 960px;
       color: #222; line-height: 1.4; padding: 0 1rem; }
.lead { color: #555; } .score { font-size: 1.8rem; font-weight: bold; } .warning { color: #a94442; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #ddd; padding: 0.35rem 0.6rem;
  text-align: left; vertical-align: top; } th { background: #f4f4f4; } td.num, th.num { text-align: right; }
tr.passed td:first-child { color: #2e7d32; } tr.failed td:first-child { color: #c62828; }
pre { white-space: pre-wrap; font-size: 0.85rem; margin: 0.3rem 0 0; }
img { max-width: 100%; height: auto; } figure { margin: 1rem 0; } figcaption { color: #555; }
"""


def to_html(results: GradingResults, shown: frozenset[str] = SHOWN_AFTER_PUBLISHED) -> str:
    """Render the student's feedback page: self-contained HTML, the report folder's pictures embedded."""
    e = html.escape
    tests, not_shown = shown_tests(results, shown)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(TITLE)}: {e(results.submission)}</title>", f"<style>{FEEDBACK_STYLE}</style></head><body>",
           f"<h1>{e(TITLE)}</h1>", f'<p class="lead">Feedback for <b>{e(results.submission)}</b></p>',
           f'<p class="score" id="score">{e(headline_score(tests))}</p>']
    if not_shown:
        out.append(f"<p>{e(not_shown)}</p>")
    if results.status != GRADED:
        out.append(f'<p class="warning">{e(GRADING_UNFINISHED)}.</p>')
    parts = results.graded_parts(tests)
    if parts:
        out += ['<h2>By part</h2><table id="parts"><tr><th>Part</th><th class="num">Score</th></tr>']
        out += [f'<tr><td><code>{e(part)}</code></td><td class="num">{fraction(*totals)}</td></tr>'
                for part, totals in parts.items()]
        out.append("</table>")
    if tests:
        out += ['<h2>Tests</h2><table id="tests"><tr><th></th><th>Test</th><th class="num">Points</th></tr>']
        for test, same in fold(tests):  # the later failures of one cause are named under the first
            mark, kind = ("✓", "passed") if test.status == PASSED else ("✗", "failed")
            detail = f"<pre>{e(terminal_safe(test.output))}</pre>" if test.status != PASSED and test.output else ""
            detail += f"<p>{e(same_reason_line(same))}</p>" if same else ""
            out.append(f'<tr class="{kind}"><td>{mark}</td><td>{e(test.name)}{detail}</td>'
                       f'<td class="num">{fraction(test.score, test.max_score)}</td></tr>')
        out.append("</table>")
    pictures = [(name, png_data_uri(path)) for name, path in results.artifacts.items()]
    pictures = [(name, uri) for name, uri in pictures if uri]
    if pictures:
        out.append("<h2>Your network's training</h2>")
        out += [f'<figure><img alt="{e(PICTURE_CAPTIONS.get(name, name))}" src="{uri}">'
                f"<figcaption>{e(PICTURE_CAPTIONS.get(name, name))}</figcaption></figure>"
                for name, uri in pictures]
    if results.notes:
        out += ["<h2>Notes</h2><ul>", *[f"<li>{e(str(note))}</li>" for note in results.notes], "</ul>"]
    if results.probe_output:
        out += [f"<details><summary>{e(PRINTED_HEADING)}</summary>",
                f"<pre>{e(terminal_safe(results.probe_output))}</pre></details>"]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def png_data_uri(path: str | Path) -> str:
    """Return a data: URI holding a PNG file, or "" when path is not a readable PNG (the page embeds its pictures)."""
    try:
        data = Path(path).read_bytes() if str(path).lower().endswith(".png") else b""
    except OSError:
        return ""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
