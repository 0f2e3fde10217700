"""The terminal report: tests, part subtotals, notes, then what the code printed."""

from grader.render.common import GRADING_UNFINISHED, PRINTED_HEADING, TITLE, bonus_note, fraction, indent, points
from grader.render.common import sandbox_line as sandbox_line_of
from grader.render.escape import terminal_safe
from grader.results import GRADED, PASSED, VISIBLE


def to_text(results):
    """Render the terminal report: tests, part subtotals, notes, then what the code printed."""
    lines = [f"{TITLE}: {terminal_safe(results.submission)}",
             f"Score: {points(results.score)} / {points(results.max_score)}{bonus_note(results)}"]
    if results.status != GRADED:
        lines.append(f"{GRADING_UNFINISHED}.")
    lines.append("")
    width = max((len(fraction(t.score, t.max_score)) for t in results.tests), default=0)
    for test in results.tests:
        mark = "✓" if test.status == PASSED else "✗"
        shown = fraction(test.score, test.max_score).rjust(width)
        when = "" if test.visibility == VISIBLE else f"  [{test.visibility}]"
        lines.append(f"{mark} {shown}  {terminal_safe(test.name)}{when}")
        if test.status != PASSED and test.output:
            lines.extend(indent(terminal_safe(test.output), "      "))
    parts = results.graded_parts()
    if parts:
        lines += ["", "By part:"]
        name_width = max(len(part) for part in parts)
        for part, (score, max_score) in parts.items():
            lines.append(f"  {part.ljust(name_width)}  {points(score)} / {points(max_score)}")
    if results.notes:
        lines += ["", "Notes:"]
        lines += [f"  - {terminal_safe(str(note))}" for note in results.notes]
    if results.sandbox:
        lines += ["", sandbox_line_of(results)]
    if results.probe_output:
        # Prefixed so nothing the student printed can pass for a line of the report.
        lines += ["", f"{PRINTED_HEADING}:"]
        lines.extend(indent(terminal_safe(results.probe_output), "  | "))
    return "\n".join(lines) + "\n"
