"""Read the points table of the hidden tests (points.toml): which test is worth what, in which part."""

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04 image): the same parser, from PyPI
    import tomli as tomllib

from grader.lesson.manifest import PARTS, POINTS_FILE


def load_points(path: Path = POINTS_FILE) -> dict[str, dict[str, float]]:
    """Return {part: {test name: points}} from the points table."""
    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    unknown = set(table) - set(PARTS)
    if unknown:
        raise ValueError(f"Invalid part {sorted(unknown)} in {path}: expected one of {', '.join(PARTS)}")
    return table
