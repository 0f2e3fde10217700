"""Read the points table of the hidden tests (points.toml): which test is worth what, in which part, shown when.

A `[visibility]` table sets Gradescope's visibility of a part (`PART = "after_due_date"`) or of one test
(`"training.test_learns_the_synthetic_shapes" = "after_published"`); a test not named there is visible.
"""

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same parser, from PyPI
    import tomli as tomllib

from grader.lesson.manifest import PARTS, POINTS_FILE
from grader.results import parse_visibility

VISIBILITY_TABLE = "visibility"


BONUS = "bonus"  # the table naming the parts whose points come on top of the lesson's


NO_POINTS = ("The lesson's points table is read from {path}: it is missing. Expected a points.toml next to the "
             "lesson's lesson.toml (see the kit's own). Received: a lesson folder without one.")


def _read(path):
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ValueError(NO_POINTS.format(path=path)) from None


def load_table(path: Path = POINTS_FILE) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Return ({part: {test name: points}}, {part or "part.test": visibility}) from the points table."""
    table = _read(path)
    table.pop(BONUS, None)
    visibility = parse_visibility(table.pop(VISIBILITY_TABLE, {}), where=str(path))
    unknown = set(table) - set(PARTS)
    if unknown:
        raise ValueError(f"Invalid part {sorted(unknown)} in {path}: expected one of {', '.join(PARTS)}")
    for key in visibility:
        part, _, test_name = key.partition(".")
        if test_name and test_name not in table.get(part, {}):
            raise ValueError(f"Invalid key {key!r} in the [visibility] table of {path}: there is no test "
                             f"{test_name} under [{part}]. Expected one of: {', '.join(table.get(part, {}))}")
    return table, visibility


def load_points(path: Path = POINTS_FILE) -> dict[str, dict[str, float]]:
    """Return {part: {test name: points}} from the points table (without its [visibility] and [bonus] tables)."""
    return load_table(path)[0]


def load_bonus_parts(path: Path = POINTS_FILE) -> tuple[str, ...]:
    """Return the parts graded as extra credit: [bonus] parts = [...] in the points table."""
    parts = _read(path).get(BONUS, {}).get("parts", [])
    unknown = [part for part in parts if part not in PARTS]
    if not isinstance(parts, list) or unknown:
        raise ValueError(f"Invalid bonus parts {parts!r} in {path}: expected a list of {', '.join(PARTS)}")
    return tuple(parts)
