"""Messages read as written English: counts agree with their nouns, nothing is said twice, no stray punctuation."""

import pytest

from grader.untrusted.runner import describe_exception
from grader.wording import plural


@pytest.mark.parametrize("count, noun, expected", [
    (0, "student", "0 students"), (1, "student", "1 student"), (2, "worker", "2 workers"),
    (1_000, "submission", "1,000 submissions"), (1, "mistake", "1 mistake"), (3, "match", "3 matches"),
])
def test_plural_agrees_with_the_count(count, noun, expected):
    assert plural(count, noun, "matches" if noun == "match" else None) == expected


def test_an_exception_inside_a_list_names_its_line_without_the_trailing_comma(tmp_path):
    source = tmp_path / "augmentation.py"
    source.write_text('def build():\n    return [\n        int("18 degrees"),\n    ]\n')
    namespace = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    with pytest.raises(ValueError) as error:
        namespace["build"]()
    described = describe_exception(error.value, str(tmp_path))
    assert described.endswith('(augmentation.py:3: int("18 degrees"))'), described
    assert ",)" not in described
