"""The CI step summary / PR comment in Markdown: score, part table, test table, failure details."""

from grader.render.common import GRADING_UNFINISHED, PRINTED_HEADING, TITLE, fraction, points, sandbox_line, shown_tests
from grader.render.escape import fenced, html_inline, md_inline, terminal_safe
from grader.results import GRADED, PASSED, SHOWN_BEFORE_DUE_DATE


def to_markdown(results, shown=SHOWN_BEFORE_DUE_DATE):
    """Render the CI step summary / PR comment: score, part table, test table, failure details."""
    tests, not_shown = shown_tests(results, shown)
    score, max_score = sum(t.score for t in tests), sum(t.max_score for t in tests if not t.bonus)
    passed = sum(test.status == PASSED for test in tests)
    lines = [f"## {TITLE}: {points(score)} / {points(max_score)}", "",
             f"Submission {md_inline(results.submission)}: {passed} of {len(tests)} tests passed."]
    if not_shown:
        lines += ["", not_shown]
    if results.status != GRADED:
        lines += ["", f"> **{GRADING_UNFINISHED}.**"]
    parts = results.graded_parts(tests)
    if parts:
        lines += ["", "| Part | Score | Max |", "| --- | ---: | ---: |"]
        lines += [f"| `{part}` | {points(part_score)} | {points(part_max)} |"
                  for part, (part_score, part_max) in parts.items()]
        lines.append(f"| **Total** | **{points(score)}** | **{points(max_score)}** |")
    if tests:
        lines += ["", "| | Test | Points |", "| :---: | --- | ---: |"]
        lines += [f"| {'✅' if test.status == PASSED else '❌'} | {md_inline(test.name)} | "
                  f"{fraction(test.score, test.max_score)} |" for test in tests]
    failed = [test for test in tests if test.status != PASSED]
    if failed:
        lines += ["", "### What to fix"]
        for test in failed:
            # An HTML block: GitHub does not read Markdown inside it, so escape for HTML only.
            lines += ["", (f"<details><summary>❌ {html_inline(test.name)} "
                           f"({fraction(test.score, test.max_score)})</summary>"), ""]
            lines += fenced(terminal_safe(test.output or "(no message)"))
            lines += ["", "</details>"]
    if results.notes:
        lines += ["", "### Notes", ""]
        lines += [f"- {md_inline(str(note))}" for note in results.notes]
    if results.sandbox:
        lines += ["", f"<sub>{md_inline(sandbox_line(results))}</sub>"]
    if results.probe_output:
        lines += ["", f"<details><summary>{PRINTED_HEADING}</summary>", ""]
        lines += fenced(terminal_safe(results.probe_output))
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
