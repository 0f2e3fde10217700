"""The judgement as typed data: what the grader concluded about a submission, with no I/O and no text.

model.py holds the results (CheckResult, GradingResults, Status); visibility.py Gradescope's visibility of a
test and which tests a student sees at each moment. grader/store.py reads and writes them; grader/render/
turns them into text.
"""

from grader.results.model import ERROR, FAILED, GRADED, PASSED, CheckResult, GradingResults, Status, part_order
from grader.results.visibility import (
    AFTER_DUE_DATE,
    AFTER_PUBLISHED,
    HIDDEN,
    SHOWN_AFTER_DUE_DATE,
    SHOWN_AFTER_PUBLISHED,
    SHOWN_BEFORE_DUE_DATE,
    SHOWN_TO_INSTRUCTOR,
    VISIBILITIES,
    VISIBLE,
    parse_visibility,
    visibility_of,
)

__all__ = ["AFTER_DUE_DATE", "AFTER_PUBLISHED", "ERROR", "FAILED", "GRADED", "HIDDEN", "PASSED", "SHOWN_AFTER_DUE_DATE",
           "SHOWN_AFTER_PUBLISHED", "SHOWN_BEFORE_DUE_DATE", "SHOWN_TO_INSTRUCTOR", "VISIBILITIES", "VISIBLE",
           "CheckResult", "GradingResults", "Status", "parse_visibility", "part_order", "visibility_of"]
