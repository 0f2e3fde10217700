"""Read the points table of the hidden tests (points.toml): which test is worth what, in which part."""

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same parser, from PyPI
    import tomli as tomllib

from grader.lesson.manifest import PARTS, POINTS_FILE


BONUS = "bonus"  # the table naming the parts whose points come on top of the lesson's


def _read(path):
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def load_points(path: Path = POINTS_FILE) -> dict[str, dict[str, float]]:
    """Return {part: {test name: points}} from the points table."""
    table = _read(path)
    table.pop(BONUS, None)
    unknown = set(table) - set(PARTS)
    if unknown:
        raise ValueError(f"Invalid part {sorted(unknown)} in {path}: expected one of {', '.join(PARTS)}")
    return table


def load_bonus_parts(path: Path = POINTS_FILE) -> tuple[str, ...]:
    """Return the parts graded as extra credit: [bonus] parts = [...] in the points table."""
    parts = _read(path).get(BONUS, {}).get("parts", [])
    unknown = [part for part in parts if part not in PARTS]
    if not isinstance(parts, list) or unknown:
        raise ValueError(f"Invalid bonus parts {parts!r} in {path}: expected a list of {', '.join(PARTS)}")
    return tuple(parts)
