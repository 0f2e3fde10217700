"""Gradescope's visibility of a test (points.toml's [visibility] table), and which tests a student sees when.

The instructor's formats (text, JSON, CSV) show every test; the student's show only what a student may see at
that moment: the CI formats (Markdown, JUnit) what they may see before the due date, the HTML page what they
may see once grades are published.
"""

from grader.lesson.manifest import PARTS

VISIBLE, AFTER_DUE_DATE, AFTER_PUBLISHED, HIDDEN = "visible", "after_due_date", "after_published", "hidden"
VISIBILITIES = (VISIBLE, AFTER_DUE_DATE, AFTER_PUBLISHED, HIDDEN)
SHOWN_BEFORE_DUE_DATE = frozenset({VISIBLE})
SHOWN_AFTER_DUE_DATE = frozenset({VISIBLE, AFTER_DUE_DATE})
SHOWN_AFTER_PUBLISHED = frozenset({VISIBLE, AFTER_DUE_DATE, AFTER_PUBLISHED})
SHOWN_TO_INSTRUCTOR = frozenset(VISIBILITIES)
BAD_VISIBILITY = ("Invalid visibility {value!r} for {key!r} in the [visibility] table of {where}: expected one of "
                  "{expected}")
BAD_VISIBILITY_KEY = ("Invalid key {key!r} in the [visibility] table of {where}: expected a part ({parts}) or "
                      "part.test_name")


def parse_visibility(table, where="points.toml") -> dict:
    """Return {part or "part.test_name": visibility} from points.toml's [visibility] table, checked."""
    checked = {}
    for key, value in (table or {}).items():
        part, _, test_name = str(key).partition(".")
        if part not in PARTS or (_ and not test_name):
            raise ValueError(BAD_VISIBILITY_KEY.format(key=key, where=where, parts=", ".join(PARTS)))
        if value not in VISIBILITIES:
            raise ValueError(BAD_VISIBILITY.format(value=value, key=key, where=where, expected=", ".join(VISIBILITIES)))
        checked[key] = value
    return checked


def visibility_of(visibility: dict, part: str, test_name: str) -> str:
    """Return a test's visibility: its own entry, else its part's, else visible."""
    return visibility.get(f"{part}.{test_name}", visibility.get(part, VISIBLE))
