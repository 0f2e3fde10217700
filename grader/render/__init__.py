"""Renderers: pure functions from results to text, one module per output format.

Each renders the same tests, in the same order, for one audience: the terminal (text), Gradescope
(gradescope_json), CI (junit, markdown), the student (html: a self-contained feedback page), the gradebook
(gradebook: CSV rows) and the instructor after a batch (summary: the class summary). Pass `shown=` to the
student's formats to choose the moment whose visibility they follow (grader/results/visibility.py).
"""

from grader.render.gradescope_json import to_json
from grader.render.html import to_html
from grader.render.junit import to_junit
from grader.render.markdown import to_markdown
from grader.render.text import to_text

FORMATS = ("text", "json", "junit", "markdown", "html")
SUFFIXES = {"text": ".txt", "json": ".json", "junit": ".xml", "markdown": ".md", "html": ".html"}
UNKNOWN_FORMAT = "Unknown report format: expected one of {expected}. Received: format={received!r}"
RENDERERS = {"text": to_text, "json": to_json, "junit": to_junit, "markdown": to_markdown, "html": to_html}


def render(results, fmt, **options):
    """Render results in one of FORMATS (options such as shown= go to the format's renderer)."""
    if fmt not in FORMATS:
        raise ValueError(UNKNOWN_FORMAT.format(expected=", ".join(FORMATS), received=fmt))
    return RENDERERS[fmt](results, **options)
