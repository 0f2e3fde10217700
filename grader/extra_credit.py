"""The bonus is extra credit everywhere, by one rule: the lesson's points out of its maximum, the bonus on top.

A score (`GradingResults.score`, a gradebook's `score`) includes the bonus, so it may exceed `max_score`. Every
output applies this module: the reports' headlines say "91 / 100 points (+5 bonus)", the class histogram's range
covers the highest score, and each LMS export writes what that LMS accepts:

- Canvas takes a score above the assignment's points possible as extra credit (its guides add extra credit by
  entering "extra points to an existing assignment"): the total goes in the assignment's column, the lesson's
  maximum in the "Points Possible" row.
- Moodle's CSV import refuses a grade above the grade item's maximum ("gradevaluetoobig"; a value over 100 unless
  the site enables `unlimitedgrades`): the lesson's points go in the grade item's column, never above its maximum,
  and the bonus in a column of its own, mapped in the import form to a second grade item (e.g. "Lesson 6 bonus",
  maximum 5).
"""


def number(value):
    """Return value as an int when it is whole: 105, not 105.0."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 4)


def lesson_points(score, bonus):
    """Return the points of the lesson's tasks: the score without the bonus earned."""
    return number(float(score) - float(bonus or 0))


def score_text(score, max_score, bonus, *, has_bonus=True):
    """Return "91 / 100 points (+5 bonus)" for a score of 96 with 5 bonus; "96 / 100 points" with no bonus on offer."""
    text = f"{lesson_points(score, bonus)} / {number(max_score)} points"
    return f"{text} (+{number(bonus or 0)} bonus)" if has_bonus else text


def histogram_top(max_score, scores):
    """Return the top of a score histogram's range: the maximum score, or the highest score when a bonus beats it."""
    return max([float(max_score), *map(float, scores)])
