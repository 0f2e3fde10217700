"""What every format of a submission's report shares: its title, number style and one-line verdict."""

from grader import extra_credit
from grader.lesson.manifest import LESSON_NAME
from grader.results import GRADED, SHOWN_TO_INSTRUCTOR, CheckResult, GradingResults

TITLE = LESSON_NAME  # the lesson's name, from its lesson.toml
PRINTED_HEADING = "What your code printed"
GRADING_UNFINISHED = "Grading could not finish; the score counts only the tests that ran"
NOT_SHOWN = "{count} more tests ({points} points) are not shown yet; the score above counts only the tests shown."


def number(value: float) -> int | float:
    """Return value as an int when it is whole, so JSON and CSV show 2 rather than 2.0."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 4)


def points(value: float) -> str:
    """Return points as short text: 2, 1.5, 0.25."""
    return str(number(value))


def fraction(score: float, max_score: float) -> str:
    """Return "score/max" points text."""
    return f"{points(score)}/{points(max_score)}"


def indent(text: str, prefix: str) -> list[str]:
    """Return text's lines, each behind prefix."""
    return [(prefix + line).rstrip() for line in text.rstrip("\n").splitlines()]


def shown_tests(results: GradingResults, shown: frozenset[str] = SHOWN_TO_INSTRUCTOR) -> tuple[list[CheckResult], str]:
    """Return the tests whose visibility is in shown, and a sentence about the others (empty if none)."""
    tests, others = results.tests_shown(shown)
    note = NOT_SHOWN.format(count=len(others), points=points(sum(t.max_score for t in others))) if others else ""
    return tests, note


def headline_score(tests: list[CheckResult]) -> str:
    """Return a report's headline score: "91 / 100 points (+5 bonus)" (grader.extra_credit's one rule)."""
    bonus = [test for test in tests if test.bonus]
    return extra_credit.score_text(sum(t.score for t in tests), sum(t.max_score for t in tests if not t.bonus),
                                   sum(t.score for t in bonus), has_bonus=bool(bonus))


def bonus_note(results: GradingResults) -> str:
    """Return ', including 5 of 5 bonus points' when the results have bonus tests, else ''."""
    if not results.bonus_max_score:
        return ""
    return f", including {points(results.bonus_score)} of {points(results.bonus_max_score)} bonus points"


def summary(results: GradingResults) -> str:
    """Return the one-line verdict every format leads with."""
    line = (f"Score: {points(results.score)} / {points(results.max_score)}{bonus_note(results)} "
            f"({results.passed_count()} of {len(results.tests)} tests passed)")
    if results.status != GRADED:
        line += f". {GRADING_UNFINISHED}"
    return line


def sandbox_line(results: GradingResults) -> str:
    """Return which isolation layers held for this grade, in one line ('' when the probe did not run)."""
    if not results.sandbox:
        return ""
    held = [layer["name"] for layer in results.sandbox if layer.get("held")]
    missing = [f"{layer['name']} ({layer.get('reason', '')})" for layer in results.sandbox if not layer.get("held")]
    return (f"Sandbox layers that held: {', '.join(held) or 'none'}"
            + (f"; not available: {'; '.join(missing)}" if missing else ""))
