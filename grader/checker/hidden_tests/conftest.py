"""Fixtures and collection rules for the hidden tests (run by the trusted checker, never by students).

Points, parts and visibility come from points.toml next to this file; the `grading` fixture is the session object
holding the probe's data for the submission under test.
"""

import pytest

from grader.checker.points import load_bonus_parts, load_table
from grader.checker.session import GradingSession
from grader.lesson.manifest import PARTS, POINTS_FILE
from grader.results import visibility_of


def part_of(item):
    """Return the part an item grades: its `part` parameter, else its module's PART."""
    callspec = getattr(item, "callspec", None)
    if callspec and "part" in callspec.params:
        return callspec.params["part"]
    return item.module.PART


def pytest_collection_modifyitems(session, config, items):
    """Mark every hidden test with its part, points, visibility and bonus, and order them by part."""
    table, visibility = load_table()
    bonus = load_bonus_parts()
    unused = {(part, name) for part, tests in table.items() for name in tests}
    for item in items:
        part = part_of(item)
        points = table.get(part, {}).get(item.originalname)
        if points is None:
            raise pytest.UsageError(f"Hidden test {item.nodeid} has no points: add `{item.originalname} = N` "
                                    f"under [{part}] in {POINTS_FILE}")
        unused.discard((part, item.originalname))
        item.add_marker(pytest.mark.part(part))
        item.add_marker(pytest.mark.points(points))
        item.add_marker(pytest.mark.visibility(visibility_of(visibility, part, item.originalname)))
        if part in bonus:
            item.add_marker(pytest.mark.bonus)
    if unused:
        raise pytest.UsageError(f"{POINTS_FILE} gives points to tests that do not exist: {sorted(unused)}")
    items.sort(key=lambda item: PARTS.index(part_of(item)))


@pytest.fixture(scope="session")
def grading(pytestconfig):
    """Return the GradingSession for the submission under test."""
    for plugin in pytestconfig.pluginmanager.get_plugins():
        if isinstance(plugin, GradingSession):
            return plugin
    raise pytest.UsageError("The hidden tests run only inside the grader (grader grade PATH).")

