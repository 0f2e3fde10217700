"""The report renderers: every format shows the same tests, parses, and escapes what students wrote."""

import base64
import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.lesson.manifest import PARTS
from grader.render import FORMATS, RENDERERS, SUFFIXES, UNKNOWN_FORMAT, render
from grader.render.common import GRADING_UNFINISHED, NOT_SHOWN, PRINTED_HEADING, summary
from grader.render.gradebook import CSV_FIELDS, csv_row, write_csv
from grader.render.gradescope_json import to_json
from grader.render.html import to_html
from grader.render.junit import to_junit
from grader.render.markdown import to_markdown
from grader.render.text import to_text
from grader.results import (
    AFTER_DUE_DATE,
    AFTER_PUBLISHED,
    FAILED,
    HIDDEN,
    PASSED,
    SHOWN_AFTER_DUE_DATE,
    SHOWN_BEFORE_DUE_DATE,
    SHOWN_TO_INSTRUCTOR,
    VISIBLE,
    CheckResult,
    GradingResults,
    parse_visibility,
    visibility_of,
)
from grader.store import BAD_RESULTS_JSON, from_json, write_gradebook

# Outputs a student's code or a check can produce: markup characters, quotes, unicode, a terminal escape.
SHAPE_MESSAGE = ('Called head_params((4, 4, 128), 10, "gap"). The function returned 20490, but the tests '
                 "expected 1290.\nDid you use <Flatten> & not 'GAP'?")
CNN_MESSAGE = ('The first MaxPooling2D gives (None, 15, 15, 32) ≠ (None, 16, 16, 32) — padding="valid"?\n'
               "```x```")
PRINTED = "Epoch 1/1 ━━━━ loss: 2.3\nScore: 50 / 50 <fake>\n\x1b[2J"


def make_results(**overrides):
    """Return a small hand-built GradingResults: passes and failures in several parts."""
    fields = dict(
        submission='alice <&> "bob".ipynb',
        tests=[
            CheckResult("shape_math: conv_output_size", "shape_math", 2.0, 2.0, PASSED),
            CheckResult("shape_math: head_params", "shape_math", 0.0, 3.0, FAILED, SHAPE_MESSAGE),
            CheckResult("augmentation: identity at inference", "augmentation", 3.0, 3.0, PASSED),
            CheckResult("build_cnn: output shape after every stage", "build_cnn", 1.5, 5.0, FAILED,
                        CNN_MESSAGE, visibility="after_due_date"),
            CheckResult("training: accuracy above threshold", "training", 10.0, 10.0, PASSED),
        ],
        execution_time=42.125,
        probe_output=PRINTED,
        notes=["Defined everything in one notebook.", "Used `from tensorflow import keras` & Sequential."],
        artifacts={"history": "reports/alice/history.json"},
    )
    fields.update(overrides)
    return GradingResults(**fields)


@pytest.fixture
def results():
    return make_results()


def test_text_report_lists_every_test_with_its_mark_and_points(results):
    text = to_text(results)
    lines = text.splitlines()
    assert 'alice <&> "bob".ipynb' in lines[0]
    assert "Score: 16.5 / 23" in lines[1]
    squeezed = [" ".join(line.split()) for line in lines]  # points are right-aligned
    assert "✓ 2/2 shape_math: conv_output_size" in squeezed
    assert "✗ 0/3 shape_math: head_params" in squeezed
    assert "✗ 1.5/5 build_cnn: output shape after every stage [after_due_date]" in squeezed
    assert "✓ 10/10 training: accuracy above threshold" in squeezed


def test_text_report_indents_the_output_of_failed_tests_only(results):
    lines = to_text(results).splitlines()
    failed_at = lines.index(next(line for line in lines if line.endswith("shape_math: head_params")))
    assert lines[failed_at + 1].startswith("      Called head_params(")
    assert lines[failed_at + 2] == "      Did you use <Flatten> & not 'GAP'?"


def test_text_report_gives_part_subtotals_notes_and_printed_output_last(results):
    text = to_text(results)
    assert "shape_math    2 / 5" in text
    assert "build_cnn     1.5 / 5" in text
    assert "build_cnn_v2" not in text  # a part without tests has no subtotal
    assert "Defined everything in one notebook." in text
    heading = text.index(PRINTED_HEADING)
    assert heading > text.index("Notes:") > text.index("By part:")
    # Printed lines are fenced off so they cannot pass for report lines, and escapes are neutralised.
    assert "  | Score: 50 / 50 <fake>" in text[heading:]
    assert "\x1b" not in text and "\\x1b[2J" in text


def test_text_report_says_when_grading_did_not_finish():
    unfinished = make_results(status="error")
    assert GRADING_UNFINISHED in to_text(unfinished)
    assert GRADING_UNFINISHED in to_markdown(unfinished)
    assert GRADING_UNFINISHED in json.loads(to_json(unfinished))["output"]


def test_json_report_has_gradescope_fields_as_numbers(results):
    data = json.loads(to_json(results))
    assert data["score"] == 16.5 and data["max_score"] == 23
    assert isinstance(data["max_score"], int) and isinstance(data["execution_time"], float)
    assert data["execution_time"] == 42.125
    assert data["stdout_visibility"] == "hidden"
    assert data["visibility"] == "visible"
    assert data["output"] == "Score: 16.5 / 23 (3 of 5 tests passed)"
    assert [test["name"] for test in data["tests"]] == [test.name for test in results.tests]
    failed = data["tests"][1]
    assert failed == {"name": "shape_math: head_params", "score": 0, "max_score": 3, "status": "failed",
                      "output": SHAPE_MESSAGE, "tags": ["shape_math"], "visibility": "visible"}
    assert data["tests"][3]["visibility"] == "after_due_date"
    assert data["tests"][3]["score"] == 1.5
    assert all(test["tags"][0] in PARTS for test in data["tests"])


def test_json_report_round_trips_through_from_json(results):
    rebuilt = from_json(to_json(results))
    assert rebuilt == results
    assert to_json(rebuilt) == to_json(results)


def test_from_json_rebuilds_a_results_file_written_by_hand():
    text = json.dumps({"score": 1, "tests": [{"name": "t", "score": 1, "max_score": 2, "tags": ["filters"]}]})
    rebuilt = from_json(text)
    assert rebuilt.tests == [CheckResult("t", "filters", 1.0, 2.0, FAILED, "")]


@pytest.mark.parametrize("text, problem", [
    ("not json", "invalid JSON"),
    ("[1, 2]", 'expected an object with a "tests" list'),
])
def test_from_json_says_what_it_expected_and_received(text, problem):
    with pytest.raises(ValueError) as info:
        from_json(text)
    message = str(info.value)
    assert message.startswith(BAD_RESULTS_JSON.split("{")[0])
    assert problem in message and f"Received: {text!r}" in message


def test_junit_report_is_well_formed_and_matches_json_test_for_test(results):
    suite = ET.fromstring(to_junit(results, shown=SHOWN_TO_INSTRUCTOR).encode("utf-8"))
    data = json.loads(to_json(results))
    assert suite.tag == "testsuite" and suite.get("name") == "lesson6"
    assert suite.get("tests") == "5" and suite.get("failures") == "2"
    assert float(suite.get("time")) == pytest.approx(42.125)
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == \
        [f"{test['name']} ({test['max_score']} points)" for test in data["tests"]]
    classnames = [f"lesson6.{test['tags'][0]}" for test in data["tests"]]
    assert [case.get("classname") for case in cases] == classnames
    assert [FAILED if case.find("failure") is not None else PASSED for case in cases] == \
        [test["status"] for test in data["tests"]]


def test_junit_report_escapes_outputs_and_keeps_scores(results):
    suite = ET.fromstring(to_junit(results, shown=SHOWN_TO_INSTRUCTOR).encode("utf-8"))
    properties = {prop.get("name"): prop.get("value") for prop in suite.find("properties")}
    assert properties["score"] == "16.5" and properties["max_score"] == "23"
    assert properties["submission"] == 'alice <&> "bob".ipynb'
    case = suite.findall("testcase")[1]
    failure = case.find("failure")
    assert failure.text == SHAPE_MESSAGE
    assert failure.get("message") == "0/3 points: " + SHAPE_MESSAGE.splitlines()[0]
    assert case.find("system-out").text == "0/3 points"
    assert suite.findall("testcase")[0].find("system-out").text == "2/2 points"
    # The escape character is illegal in XML 1.0; it must arrive as visible text.
    assert suite.find("system-out").text.endswith("\\x1b[2J")


def test_junit_report_stays_well_formed_with_control_characters_in_names():
    results = make_results(tests=[CheckResult("odd\x00name\x1b", "filters", 0, 1, FAILED, "\x07bell")])
    case = ET.fromstring(to_junit(results).encode("utf-8")).find("testcase")
    assert case.get("name") == "odd\\x00name\\x1b (1 points)"


def test_markdown_report_has_part_and_test_tables(results):
    markdown = to_markdown(results, shown=SHOWN_TO_INSTRUCTOR)
    assert markdown.startswith("## Lesson 6 — CNNs in Keras: 16.5 / 23")
    assert "| Part | Score | Max |" in markdown
    assert "| `shape_math` | 2 | 5 |" in markdown
    assert "| **Total** | **16.5** | **23** |" in markdown
    assert "| ✅ | shape\\_math: conv\\_output\\_size | 2/2 |" in markdown
    assert "| ❌ | build\\_cnn: output shape after every stage | 1.5/5 |" in markdown
    assert "alice &lt;&amp;&gt; \"bob\".ipynb" in markdown  # no raw HTML from a submission name


def test_markdown_report_puts_each_failure_in_a_details_block(results):
    markdown = to_markdown(results, shown=SHOWN_TO_INSTRUCTOR)
    assert markdown.count("<details>") == 3  # two failures and the printed output
    assert "<summary>❌ shape_math: head_params (0/3)</summary>" in markdown
    assert SHAPE_MESSAGE in markdown
    # The fence is longer than the backticks inside the output, so the block cannot be closed early.
    assert "````text\n" + CNN_MESSAGE + "\n````" in markdown
    assert "\x1b" not in markdown


def test_markdown_report_has_no_failure_section_when_everything_passed():
    passed = CheckResult("shape_math: conv", "shape_math", 1, 1, PASSED)
    results = make_results(tests=[passed], probe_output="")
    assert "<details>" not in to_markdown(results)


def test_csv_row_has_one_column_per_part_and_blank_for_untested_parts(results):
    row = csv_row(results)
    assert tuple(row) == CSV_FIELDS
    assert row == {"id": 'alice <&> "bob".ipynb', "score": 16.5, "max_score": 23, "bonus": 0, "shape_math": 2,
                   "augmentation": 3, "build_cnn": 1.5, "build_cnn_v2": "", "training": 10, "filters": "",
                   "status": "graded", "seconds": 42.1, "message": "Defined everything in one notebook."}


def test_write_gradebook_writes_a_header_and_one_row_per_submission(results, tmp_path):
    other = make_results(submission="=HYPERLINK(\"x\")", tests=[], status="error", execution_time=0.0,
                         notes=["=worker died\nwhile grading " + "x" * 300])
    path = tmp_path / "gradebook.csv"
    write_gradebook([results, other], path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(CSV_FIELDS)
    assert rows[0]["id"] == 'alice <&> "bob".ipynb' and rows[0]["score"] == "16.5"
    assert rows[1]["id"] == "'=HYPERLINK(\"x\")"  # a spreadsheet must not run it as a formula
    assert rows[1]["status"] == "error" and rows[1]["max_score"] == "0"
    assert rows[1]["message"] == "'=worker died while grading " + "x" * 173  # one line, cut, not a formula


def test_write_csv_writes_to_an_open_file(results):
    buffer = io.StringIO()
    write_csv([results], buffer)
    assert buffer.getvalue().splitlines()[0] == ",".join(CSV_FIELDS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_render_dispatches_to_the_format_renderer(results, fmt):
    assert render(results, fmt) == RENDERERS[fmt](results)
    assert fmt in SUFFIXES


def test_render_rejects_an_unknown_format_saying_what_it_expected(results):
    with pytest.raises(ValueError) as info:
        render(results, "pdf")
    assert str(info.value) == UNKNOWN_FORMAT.format(expected="text, json, junit, markdown, html", received="pdf")
    assert "Received: format='pdf'" in str(info.value)


def test_empty_results_render_in_every_format():
    empty = GradingResults("nobody")
    for fmt in FORMATS:
        assert render(empty, fmt)
    assert json.loads(to_json(empty))["tests"] == []
    assert ET.fromstring(to_junit(empty).encode("utf-8")).get("tests") == "0"


def test_results_renderers_and_store_do_not_import_tensorflow():
    code = ("import sys, grader.results, grader.render, grader.store; "
            "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parents[1])
    assert done.stdout.strip() == "[]"


# ---- JUnit against pytest's junit-10.xsd ------------------------------------------------------------------

JUNIT_SCHEMA = Path(__file__).parent / "schemas" / "junit-10.xsd"


def junit_schema_errors(text):
    """Return the schema's complaints about a JUnit document (empty when valid); skip without a validator."""
    try:
        import xmlschema
    except ImportError:
        xmlschema = None
    if xmlschema is not None:
        schema = xmlschema.XMLSchema(str(JUNIT_SCHEMA))
        return [str(error.reason) for error in schema.iter_errors(text)]
    try:
        from lxml import etree
    except ImportError:
        pytest.skip("validating against junit-10.xsd needs xmlschema or lxml (pip install xmlschema)")
    schema = etree.XMLSchema(etree.parse(str(JUNIT_SCHEMA)))
    schema.validate(etree.fromstring(text.encode("utf-8")))
    return [str(error) for error in schema.error_log]


@pytest.mark.parametrize("results", [
    make_results(),
    make_results(tests=[CheckResult("odd\x00name\x1b", "filters", 0, 1, FAILED, "\x07bell", seconds=0.25)]),
    make_results(tests=[], notes=[], probe_output="", execution_time=1234.5),
    GradingResults("nobody"),
])
def test_junit_report_is_valid_under_pytests_junit_schema(results):
    for shown in (SHOWN_BEFORE_DUE_DATE, SHOWN_TO_INSTRUCTOR):
        assert junit_schema_errors(to_junit(results, shown=shown)) == []


def test_the_schema_check_can_fail():
    invalid = to_junit(make_results()).replace("<testcase ", "<testcase><properties/></testcase><testcase ", 1)
    assert junit_schema_errors(invalid) != []


def test_junit_testcases_carry_their_own_time_where_known():
    tests = [CheckResult("a", "filters", 1, 1, PASSED, seconds=1.23456), CheckResult("b", "filters", 1, 1, PASSED)]
    cases = ET.fromstring(to_junit(make_results(tests=tests)).encode("utf-8")).findall("testcase")
    assert cases[0].get("time") == "1.235"
    assert cases[1].get("time") is None  # unknown, rather than a made-up 0
    assert all(case.find("properties") is None for case in cases)


def test_json_keeps_test_durations_and_round_trips_them():
    results = make_results(tests=[CheckResult("a", "filters", 1, 1, PASSED, seconds=2.5)])
    data = json.loads(to_json(results))
    assert data["tests"][0]["extra_data"] == {"seconds": 2.5}
    assert from_json(to_json(results)) == results


# ---- visibility -------------------------------------------------------------------------------------------


def test_ci_reports_show_only_what_a_student_may_see_before_the_due_date(results):
    markdown = to_markdown(results)
    assert markdown.startswith("## Lesson 6 — CNNs in Keras: 15 / 18")  # without the 5-point hidden test
    assert "output shape after every stage" not in markdown and CNN_MESSAGE not in markdown
    assert NOT_SHOWN.format(count=1, points=5) in markdown
    suite = ET.fromstring(to_junit(results).encode("utf-8"))
    assert suite.get("tests") == "4"
    assert all("output shape" not in case.get("name") for case in suite.findall("testcase"))
    assert "output shape after every stage" in to_markdown(results, shown=SHOWN_AFTER_DUE_DATE)


def test_hidden_tests_never_reach_the_student_feedback_page():
    tests = [CheckResult("shape_math: conv", "shape_math", 1, 1, PASSED),
             CheckResult("training: secret", "training", 0, 10, FAILED, "the secret check", visibility=HIDDEN),
             CheckResult("filters: later", "filters", 2, 2, PASSED, visibility=AFTER_PUBLISHED)]
    page = to_html(make_results(tests=tests))
    assert "secret" not in page and "filters: later" in page
    assert '<p class="score" id="score">3 / 3 points</p>' in page


def test_visibility_table_accepts_parts_and_single_tests():
    table = {"training": "after_due_date", "build_cnn.test_parameter_counts": "hidden"}
    visibility = parse_visibility(table)
    assert visibility_of(visibility, "training", "test_learns_the_synthetic_shapes") == AFTER_DUE_DATE
    assert visibility_of(visibility, "build_cnn", "test_parameter_counts") == HIDDEN
    assert visibility_of(visibility, "build_cnn", "test_max_pooling") == VISIBLE


@pytest.mark.parametrize("table, message", [
    ({"training": "later"}, ("Invalid visibility 'later' for 'training' in the [visibility] table of points.toml: "
                            "expected one of visible, after_due_date, after_published, hidden")),
    ({"trainig": "hidden"}, ("Invalid key 'trainig' in the [visibility] table of points.toml: expected a part "
                            "(shape_math, augmentation, build_cnn, build_cnn_v2, training, filters) "
                            "or part.test_name")),
    ({"training.": "hidden"}, "Invalid key 'training.' in the [visibility] table of points.toml"),
])
def test_visibility_table_says_what_is_wrong(table, message):
    with pytest.raises(ValueError) as info:
        parse_visibility(table)
    assert str(info.value).startswith(message)


# ---- the student's HTML feedback page -----------------------------------------------------------------------


def test_html_feedback_page_is_self_contained_with_pictures_embedded(tmp_path):
    from grader.training import pictures

    curve = pictures.save_training_curve({"loss": [2.0, 1.0], "accuracy": [0.3, 0.6]}, tmp_path / "curve.png")
    results = make_results(artifacts={"training_curve": str(curve), "history": str(tmp_path / "missing.json"),
                                      "first_layer_filters": str(tmp_path / "gone.png")})
    page = to_html(results)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    uri = "data:image/png;base64," + base64.b64encode(curve.read_bytes()).decode("ascii")
    assert f'src="{uri}"' in page and page.count("<img ") == 1  # missing files are left out
    assert "Accuracy and loss during the training check" in page
    assert "alice &lt;&amp;&gt; &quot;bob&quot;.ipynb" in page and "<fake>" not in page
    assert "\x1b" not in page and "http://" not in page and "https://" not in page
    assert "Did you use &lt;Flatten&gt; &amp; not &#x27;GAP&#x27;?" in page


def with_bonus(score):
    """Return the small results plus a bonus test worth 5 that earned `score`."""
    results = make_results()
    status = PASSED if score == 5 else FAILED
    results.tests.append(CheckResult("filters: first_layer_filters", "filters", score, 5.0, status, bonus=True))
    return results


def test_a_bonus_counts_in_the_score_but_not_in_max_score():
    earned, skipped = with_bonus(5), with_bonus(0)
    assert (earned.score, earned.max_score, earned.bonus_score) == (21.5, 23, 5)
    assert (skipped.score, skipped.max_score, skipped.bonus_score) == (16.5, 23, 0)
    assert summary(earned) == "Score: 21.5 / 23, including 5 of 5 bonus points (4 of 6 tests passed)"
    assert to_text(earned).splitlines()[1] == "Score: 21.5 / 23, including 5 of 5 bonus points"


def test_full_marks_and_the_bonus_go_past_max_score_in_results_json():
    results = make_results(tests=[CheckResult("shape_math: conv", "shape_math", 4, 4, PASSED),
                                  CheckResult("filters: maps", "filters", 2, 2, PASSED, bonus=True)])
    data = json.loads(to_json(results))
    assert data["score"] == 6 and data["max_score"] == 4  # Gradescope accepts a score above max_score
    assert data["tests"][1]["tags"] == ["filters", "bonus"] and data["tests"][0]["tags"] == ["shape_math"]
    assert from_json(to_json(results)) == results


def test_the_gradebook_has_a_bonus_column():
    row = csv_row(with_bonus(5))
    assert (row["score"], row["max_score"], row["bonus"], row["filters"]) == (21.5, 23, 5, 5)


# --- the bonus is extra credit: the headline says which points are the bonus ----------------------------------------


@pytest.mark.parametrize("bonus_points, expected", [(5, "91 / 100 points (+5 bonus)"),
                                                     (0, "91 / 100 points (+0 bonus)")])
def test_the_headline_says_the_bonus_on_top_of_the_lesson_s_points(bonus_points, expected):
    results = GradingResults("ann", tests=[
        CheckResult("build_cnn: all", "build_cnn", 91, 100, FAILED, "no"),
        CheckResult("filters: maps", "filters", bonus_points, 5, PASSED if bonus_points else FAILED, bonus=True)])
    assert f'<p class="score" id="score">{expected}</p>' in to_html(results)
    assert to_markdown(results).splitlines()[0].endswith(f": {expected}")


def test_without_a_bonus_on_offer_the_headline_has_no_bonus():
    results = GradingResults("ann", tests=[CheckResult("build_cnn: all", "build_cnn", 96, 100, FAILED, "no")])
    assert '<p class="score" id="score">96 / 100 points</p>' in to_html(results)
