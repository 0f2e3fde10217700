"""The class summary: what an instructor asks first after a deadline, from the GradingResults of a batch.

`summarise` computes it (score histogram, per-part mean and median, per-test failure rate, the most common
failure messages with the students who got them) as data; grader/render/summary.py renders it as HTML and
Markdown, grader/store.py writes those and reads back the report.json files a batch wrote under --reports.
"""

import statistics
from dataclasses import dataclass, field

from grader.lesson.manifest import PARTS
from grader.results import GRADED, PASSED, CheckResult, GradingResults

TOP_MISTAKES = 10


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
    def failure_rate(self) -> float:
        return self.failed / self.ran if self.ran else 0.0


@dataclass
class Mistake:
    """One failure message, the tests that gave it, and everyone who got it."""

    tests: list[str]
    message: str
    students: list[str] = field(default_factory=list)

    @property
    def test(self) -> str:
        """Return the tests as one line: the first, and how many more gave the same message."""
        others = len(self.tests) - 1
        more = f" (and {others} more {'test' if others == 1 else 'tests'})" if others else ""
        return self.tests[0] + more


@dataclass
class ClassSummary:
    """Everything the summary page shows."""

    submissions: int
    scores: dict[str, float]        # id -> score, graded submissions only
    max_score: float
    parts: list[PartStats]          # PartStats, in PARTS order
    tests: list[TestStats]          # TestStats, most failed first
    mistakes: list[Mistake]         # Mistake, most common first
    errors: dict[str, str]          # id -> why grading could not finish
    failed_all: dict[str, str] = field(default_factory=dict)  # id -> first failure, for submissions that passed nothing

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores.values()) if self.scores else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.scores.values()) if self.scores else 0.0


def summarise(results_list: list[GradingResults], *, top: int = TOP_MISTAKES,
              names: dict[str, str] | None = None) -> ClassSummary:
    """Return the class summary of a batch's GradingResults; names maps submission ids to student names."""
    names = names or {}

    def label(results: GradingResults) -> str:
        return names.get(results.submission, results.submission)

    graded = [results for results in results_list if results.status == GRADED]
    errors = {label(results): (results.notes[0] if results.notes else "no reason recorded")
              for results in results_list if results.status != GRADED}
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
    tests: dict[str, TestStats] = {}
    mistakes: dict[str, Mistake] = {}
    for results in graded:
        # one student's failures by root cause: one mistake each, however many tests it fails
        causes: dict[str, list[CheckResult]] = {}
        for test in results.tests:
            stats = tests.setdefault(test.name, TestStats(test.name, test.part, test.max_score, 0, 0))
            stats.ran += 1
            if test.status != PASSED:
                stats.failed += 1
                if label(results) not in failed_all:
                    causes.setdefault(test.cause or test.output.strip(), []).append(test)
        for failures in causes.values():
            # Named by the first failure's message, so the same mistake of other students counts with it.
            message = failures[0].output.strip() or "(no message)"
            mistake = mistakes.setdefault(message, Mistake([], message))
            mistake.tests += [test.name for test in failures if test.name not in mistake.tests]
            if label(results) not in mistake.students:
                mistake.students.append(label(results))
    order = {name: index for index, name in enumerate(tests)}
    ranked_tests = sorted(tests.values(), key=lambda t: (-t.failure_rate, order[t.name]))
    ranked_mistakes = sorted(mistakes.values(), key=lambda m: -len(m.students))[:top]
    return ClassSummary(submissions=len(results_list), scores=scores, max_score=max_score, parts=parts,
                        tests=ranked_tests, mistakes=ranked_mistakes, errors=errors, failed_all=failed_all)
