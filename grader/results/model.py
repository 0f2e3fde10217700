"""One results object per graded submission: the hidden tests' verdicts and what the grader noted.

Grading logic fills a GradingResults; grader/render/ turns it into text for each audience, grader/store.py
writes and reads it.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from grader.lesson.manifest import PARTS
from grader.results.visibility import SHOWN_TO_INSTRUCTOR, VISIBLE


class Status(StrEnum):
    """A test's outcome (passed, failed) or a grading's (graded, error); equal to its string, so JSON keeps it."""

    PASSED = "passed"
    FAILED = "failed"
    GRADED = "graded"
    ERROR = "error"


PASSED, FAILED, GRADED, ERROR = Status.PASSED, Status.FAILED, Status.GRADED, Status.ERROR


@dataclass
class CheckResult:
    """One hidden test's verdict (named so pytest does not collect it)."""

    name: str                 # e.g. "build_cnn: output shape after every stage"
    part: str                 # one of PARTS; rendered as the test's tags
    score: float
    max_score: float
    status: str               # PASSED or FAILED
    output: str = ""          # what the student reads: empty when passed, the mistake in words when failed
    visibility: str = VISIBLE  # one of VISIBILITIES (Gradescope's), from points.toml's [visibility]
    seconds: float | None = None  # how long the test ran (pytest's setup + call), None where unknown
    bonus: bool = False       # extra credit: its points count in score, never in max_score


@dataclass
class GradingResults:
    """Everything the grader concluded about one submission."""

    submission: str                                  # the submission's id (file or folder name)
    tests: list = field(default_factory=list)        # CheckResult, in grading order
    execution_time: float = 0.0                      # seconds, whole grading
    probe_output: str = ""                           # what the student's code printed, truncated
    notes: list = field(default_factory=list)        # plain-words facts for the instructor
    artifacts: dict = field(default_factory=dict)    # name -> path of files in the report folder
    status: str = GRADED                             # GRADED, or ERROR if grading itself failed
    sandbox: list = field(default_factory=list)      # the probe's isolation layers: {name, held, reason}

    @property
    def score(self):
        """Return the points earned, bonus included (so it may exceed max_score)."""
        return sum(test.score for test in self.tests)

    @property
    def max_score(self):
        """Return the points of the lesson's tasks: the bonus comes on top."""
        return sum(test.max_score for test in self.tests if not test.bonus)

    @property
    def bonus_score(self):
        """Return the bonus points earned."""
        return sum(test.score for test in self.tests if test.bonus)

    @property
    def bonus_max_score(self):
        """Return the bonus points on offer."""
        return sum(test.max_score for test in self.tests if test.bonus)

    def part_scores(self):
        """Return {part: (score, max_score)} for every part in PARTS."""
        totals = {part: [0.0, 0.0] for part in PARTS}
        for test in self.tests:
            totals[test.part][0] += test.score
            totals[test.part][1] += test.max_score
        return {part: tuple(values) for part, values in totals.items()}

    def passed_count(self):
        """Return how many tests passed."""
        return sum(test.status == PASSED for test in self.tests)

    def graded_parts(self, tests=None):
        """Return {part: (score, max_score)} for the parts that have at least one test, in PARTS order."""
        totals = {}
        for test in self.tests if tests is None else tests:
            score, max_score = totals.get(test.part, (0.0, 0.0))
            totals[test.part] = (score + test.score, max_score + test.max_score)
        return {part: totals[part] for part in sorted(totals, key=part_order)}

    def tests_shown(self, shown=SHOWN_TO_INSTRUCTOR):
        """Return (the tests whose visibility is in shown, the others)."""
        return ([test for test in self.tests if test.visibility in shown],
                [test for test in self.tests if test.visibility not in shown])


def part_order(part):
    """Return a part's place in PARTS (unknown parts last, by name)."""
    return (PARTS.index(part), "") if part in PARTS else (len(PARTS), part)
