"""The README tells the truth about the kit: its points table is the points file's, its test tiers exist."""

import re
import shlex
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dependency of the kit there)
    import tomli as tomllib

from grader.checker.points import load_bonus_parts, load_points
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
POINTS_ROW = re.compile(r"^\| `(\w+)` \| (\d+(?:\.\d+)?)( \(bonus\))? \|", flags=re.MULTILINE)
LESSON_TOTAL = 100


def section(title):
    """Return the README's text under a heading, up to the next heading of any level."""
    start = README.index(f" {title}\n")
    following = re.search(r"^#{1,6} ", README[start:], flags=re.MULTILINE)
    return README[start:start + following.start()] if following else README[start:]


def test_the_points_table_is_the_points_file():
    # The loader finds the points file wherever the lesson keeps it (grader.lesson.manifest.POINTS_FILE).
    points, bonus = load_points(), set(load_bonus_parts())
    table = {part: (float(value), bool(marked)) for part, value, marked in
             POINTS_ROW.findall(section("What the hidden tests check"))}
    assert table == {part: (float(sum(tests.values())), part in bonus) for part, tests in points.items()}
    assert sum(value for value, is_bonus in table.values() if not is_bonus) == LESSON_TOTAL
    assert f"add up to {LESSON_TOTAL} points" in section("What the hidden tests check")


def pytest_commands(text):
    """Return the `pytest ...` command lines of the README's shell blocks and inline code."""
    commands = re.findall(r"`(pytest[^`]*)`", text) + re.findall(r"^(pytest[^#\n]*)", text, flags=re.MULTILINE)
    return {" ".join(shlex.split(command)) for command in commands}


def registered_markers():
    with open(ROOT / "pyproject.toml", "rb") as handle:
        config = tomllib.load(handle)
    return {line.split(":")[0].split("(")[0] for line in config["tool"]["pytest"]["ini_options"]["markers"]}


def test_each_test_tier_is_one_command_on_registered_markers_and_ci_runs_the_full_one():
    tiers = section("Test tiers")
    commands = pytest_commands(tiers)
    assert {"pytest -m not slow", "pytest"} <= commands, commands
    for command in commands:
        for expression in re.findall(r"-m (.+)", command):
            words = set(re.findall(r"[a-z_]+", expression)) - {"not", "and", "or"}
            assert words <= registered_markers(), (command, words)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^pytest\s*$", ci, flags=re.MULTILINE), "`.ci/run` must run the full tier: plain `pytest`"


def test_the_venv_size_says_how_it_was_measured():
    quick_start = section("Quick start")
    assert re.search(r"\d+(\.\d+)? GB", quick_start) and "du -sh .venv" in quick_start
