"""Fixtures and collection rules for the hidden tests (run by the trusted checker, never by students).

The hidden tests are the engine's, the same for every lesson. Points, parts and visibility come from the lesson's
points.toml: a test runs for a part only where that part's table gives it points, so a lesson chooses which of the
engine's checks judge each of its parts (a network without GlobalAveragePooling2D lists no head check). The `grading`
fixture is the session object holding the probe's data for the submission under test.
"""

import pytest

from grader.checker.points import load_bonus_parts, load_table
from grader.checker.session import GradingSession
from grader.lesson.manifest import BUILDER_PARTS, PART_OF, PARTS, POINTS_FILE
from grader.results import visibility_of


def pytest_generate_tests(metafunc):
    """Run a test taking `part` once per builder part, and one taking `function` once per function of its kind."""
    if "part" in metafunc.fixturenames:
        metafunc.parametrize("part", list(BUILDER_PARTS))
    if "function" in metafunc.fixturenames:
        metafunc.parametrize("function", list(metafunc.module.FUNCTIONS))


def part_of(item):
    """Return the part an item grades: its `part` parameter, its `function`'s part, else its module's PART."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "part" in params:
        return params["part"]
    if "function" in params:
        return PART_OF.get(params["function"])
    return getattr(item.module, "PART", None)


def points_name(item):
    """Return an item's key in the points table: its function's name, or test_<function> for a function's check."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return f"test_{params['function']}" if "function" in params else item.originalname


def title_of(item):
    """Return an item's title in reports: its test's title(...) where it has one, else its docstring's first line."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    title = getattr(item.function, "title", None)
    text = title(**{key: params[key] for key in ("part", "function") if key in params}) if title else None
    return (text or item.function.__doc__ or item.originalname).strip().splitlines()[0]


def pytest_collection_modifyitems(session, config, items):
    """Keep the tests the points table gives points to, mark each with its part, points, visibility, bonus and title,
    and order them by part."""
    table, visibility = load_table()
    bonus = load_bonus_parts()
    unused = {(part, name) for part, tests in table.items() for name in tests}
    kept, left_out = [], []
    for item in items:
        part = part_of(item)
        points = table.get(part, {}).get(points_name(item)) if part in PARTS else None
        if points is None:  # not one of this part's checks (or not one of this lesson's parts)
            left_out.append(item)
            continue
        unused.discard((part, points_name(item)))
        item.add_marker(pytest.mark.part(part))
        item.add_marker(pytest.mark.points(points))
        item.add_marker(pytest.mark.visibility(visibility_of(visibility, part, points_name(item))))
        item.add_marker(pytest.mark.title(title_of(item)))
        if part in bonus:
            item.add_marker(pytest.mark.bonus)
        kept.append(item)
    if unused:
        raise pytest.UsageError(f"{POINTS_FILE} gives points to tests that do not exist: {sorted(unused)}")
    kept.sort(key=lambda item: PARTS.index(part_of(item)))
    items[:] = kept
    if left_out:
        config.hook.pytest_deselected(items=left_out)


@pytest.fixture(scope="session")
def grading(pytestconfig):
    """Return the GradingSession for the submission under test."""
    for plugin in pytestconfig.pluginmanager.get_plugins():
        if isinstance(plugin, GradingSession):
            return plugin
    raise pytest.UsageError("The hidden tests run only inside the grader (grader grade PATH).")
