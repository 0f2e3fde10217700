"""One mistake, one line: the failed tests that share a root cause are told under the first of them.

Every renderer lists the tests it shows through `fold`: the first failure of a cause keeps its message, and the
later failures of the same cause are named under it ("and 5 tests that fail for the same reason") instead of
repeating it. Scores are untouched: each test still counts its own points.
"""

SAME_REASON = "and {count} {tests} that fail{s} for the same reason ({points} points): {names}"
SAME_AS = "Fails for the same reason as “{first}”."


def fold(tests):
    """Return [(test, [later tests failing for the same cause])] with those later tests left out of the list."""
    firsts, rows = {}, []
    for test in tests:
        cause = getattr(test, "cause", "") if test.status != "passed" else ""
        if cause and cause in firsts:
            firsts[cause][1].append(test)
            continue
        row = (test, [])
        if cause:
            firsts[cause] = row
        rows.append(row)
    return rows


def same_reason_line(followers):
    """Return the line naming the later failures of one cause, '' when there are none."""
    if not followers:
        return ""
    points = sum(test.max_score - test.score for test in followers)
    shown = f"{points:g}"
    return SAME_REASON.format(count=len(followers), tests="test" if len(followers) == 1 else "tests",
                              s="s" if len(followers) == 1 else "", points=shown,
                              names="; ".join(test.name for test in followers))


def first_of(tests):
    """Return {id(test): the first failed test of its cause} for the later failures of every cause."""
    return {id(follower): test for test, followers in fold(tests) for follower in followers}
