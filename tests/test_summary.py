"""The class summary: its numbers from hand-built results, and the page as a real browser renders it."""

import base64
import os
import shutil
import subprocess
import tempfile

import pytest

from grader import store
from grader import summary as class_summary
from grader.render import summary as summary_render
from grader.render.gradescope_json import to_json
from grader.results import FAILED, PASSED, CheckResult, GradingResults

POOLING = "Called build_cnn(). The first MaxPooling2D gives (None, 15, 15, 32), but the lesson's network gives " \
          "(None, 16, 16, 32). Did you use padding='valid'?"
HEAD = "Called head_params((4, 4, 128), 10, \"gap\"). The function returned 20490, but the tests expected 1290."
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run")


def student(name, *, head_ok=True, pool_ok=True, status="graded"):
    """Return one student's results: three tests in two parts, 2 + 3 + 5 points."""
    tests = [CheckResult("shape_math: conv_output_size", "shape_math", 2, 2, PASSED),
             CheckResult("shape_math: head_params", "shape_math", 3 if head_ok else 0, 3,
                         PASSED if head_ok else FAILED, "" if head_ok else HEAD),
             CheckResult("build_cnn: output shape after every stage", "build_cnn", 5 if pool_ok else 0, 5,
                         PASSED if pool_ok else FAILED, "" if pool_ok else POOLING)]
    if status != "graded":
        return GradingResults(name, tests=[], status=status, notes=["The grader's worker process died."])
    return GradingResults(name, tests=tests)


@pytest.fixture
def results():
    return [student("alice"), student("bob", head_ok=False), student("carol", head_ok=False, pool_ok=False),
            student("dave", head_ok=False), student("<eve>", status="error")]


def test_summary_counts_scores_parts_and_errors(results):
    summary = class_summary.summarise(results)
    assert summary.submissions == 5
    assert summary.scores == {"alice": 10, "bob": 7, "carol": 2, "dave": 7}
    assert summary.max_score == 10
    assert summary.mean == pytest.approx(6.5) and summary.median == 7
    assert summary.errors == {"<eve>": "The grader's worker process died."}
    shape, cnn = summary.parts
    assert (shape.part, shape.max_score, shape.mean, shape.median, shape.full_marks, shape.count) == \
        ("shape_math", 5, pytest.approx(2.75), 2, 1, 4)
    assert (cnn.part, cnn.mean, cnn.median, cnn.full_marks) == ("build_cnn", pytest.approx(3.75), 5, 3)


def test_summary_ranks_tests_by_failure_rate(results):
    tests = class_summary.summarise(results).tests
    assert [(t.name, t.failed, t.ran) for t in tests] == [
        ("shape_math: head_params", 3, 4),
        ("build_cnn: output shape after every stage", 1, 4),
        ("shape_math: conv_output_size", 0, 4),
    ]
    assert tests[0].failure_rate == 0.75


def test_summary_groups_identical_failure_messages_with_the_students(results):
    mistakes = class_summary.summarise(results, names={"bob": "Bob Smith"}).mistakes
    assert [(m.tests, m.message, m.students) for m in mistakes] == [
        (["shape_math: head_params"], HEAD, ["Bob Smith", "carol", "dave"]),
        (["build_cnn: output shape after every stage"], POOLING, ["carol"]),
    ]
    assert len(class_summary.summarise(results, top=1).mistakes) == 1


def test_one_message_from_several_tests_is_one_mistake():
    timeout = "Called build_cnn_v2(): timed out after 60 s in build_cnn_v2."
    hung = GradingResults("mallory", tests=[CheckResult("shape_math: conv", "shape_math", 1, 1, PASSED),
                                            CheckResult("build_cnn_v2: input", "build_cnn_v2", 0, 1, FAILED, timeout),
                                            CheckResult("build_cnn_v2: head", "build_cnn_v2", 0, 2, FAILED, timeout)])
    (mistake,) = class_summary.summarise([hung]).mistakes
    assert (mistake.tests, mistake.students) == (["build_cnn_v2: input", "build_cnn_v2: head"], ["mallory"])
    assert mistake.test == "build_cnn_v2: input (and 1 more test)"


def test_a_submission_that_passed_nothing_is_listed_once_not_in_every_mistake(results):
    crashed = GradingResults("zed", tests=[
        CheckResult(test.name, test.part, 0, test.max_score, FAILED, f"{test.name} was not checked: exit 3")
        for test in student("x").tests])
    summary = class_summary.summarise([*results, crashed])
    assert summary.failed_all == {"zed": "shape_math: conv_output_size was not checked: exit 3"}
    assert all("zed" not in mistake.students for mistake in summary.mistakes)
    assert summary.tests[-1].failed == 1  # still counted in the failure rates
    assert "zed" in summary_render.to_markdown(summary) and 'id="failed-all-table"' in summary_render.to_html(summary)


def test_histogram_counts_put_full_marks_in_the_last_bin():
    assert summary_render.histogram_edges(10, 5) == [0, 2, 4, 6, 8, 10]
    assert summary_render.histogram_counts([0, 1.9, 2, 9.99, 10], 10, 5) == [2, 1, 0, 0, 2]


def test_histogram_figure_is_labelled(results):
    figure = summary_render.histogram_figure(class_summary.summarise(results))
    axes = figure.axes[0]
    assert axes.get_title() == "Scores of 4 graded submissions"
    assert axes.get_xlabel() == "score (points out of 10)" and axes.get_ylabel() == "students"
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["mean 6.5", "median 7.0"]
    assert sum(patch.get_height() for patch in axes.patches) == 4


def test_html_is_self_contained_and_escapes_names(results):
    page = summary_render.to_html(class_summary.summarise(results))
    assert page.startswith("<!DOCTYPE html>")
    start = page.index('src="data:image/png;base64,') + len('src="data:image/png;base64,')
    png = base64.b64decode(page[start:page.index('"', start)])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert "&lt;eve&gt;" in page and "<eve>" not in page
    assert "padding=&#x27;valid&#x27;" in page


def test_markdown_has_the_same_tables(results):
    markdown = summary_render.to_markdown(class_summary.summarise(results))
    assert "Mean 6.5, median 7.0 of 10 points." in markdown
    assert "| `shape_math` | 2.75 | 2 | 5 | 1 of 4 |" in markdown
    assert "| shape\\_math: head\\_params | 3 | 3 of 4 | 75% |" in markdown
    assert "1. **shape\\_math: head\\_params**: 3 students (bob, carol, dave)" in markdown
    assert "[8, 10] ## 2" not in markdown and "[9, 10] # 1" in markdown  # alice's 10 sits in the last bin


def test_write_summary_and_load_results_round_trip(results, tmp_path):
    for item in results:
        folder = tmp_path / "reports" / item.submission.strip("<>")
        folder.mkdir(parents=True)
        (folder / "report.json").write_text(to_json(item), encoding="utf-8")
    loaded = store.load_results(tmp_path / "reports")
    assert sorted(r.submission for r in loaded) == sorted(r.submission for r in results)
    html_path, markdown_path = store.write_summary(loaded, tmp_path / "out")
    assert html_path.name == "summary.html" and markdown_path.name == "summary.md"
    assert class_summary.summarise(loaded) == class_summary.summarise(results)


def render_in_chromium(page, tmp_path, *args):
    """Run headless Chromium on a file and return its stdout."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")
def test_summary_page_renders_in_chromium_with_its_image_and_tables(results, tmp_path):
    html_path, _ = store.write_summary(results, tmp_path)
    dom = render_in_chromium(html_path, tmp_path, "--dump-dom")
    assert 'id="histogram-image"' in dom and "data:image/png;base64," in dom
    for table in ("parts-table", "tests-table", "mistakes-table", "errors-table"):
        assert f'id="{table}"' in dom
    assert "shape_math: head_params" in dom and "bob, carol, dave" in dom
    screenshot = tmp_path / "summary.png"
    render_in_chromium(html_path, tmp_path, f"--screenshot={screenshot}", "--window-size=1200,1600")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(screenshot) > 10_000


# --- the bonus is extra credit: the histogram's range covers every score -------------------------------------------


def with_bonus(name, lesson_points, bonus_points):
    """Return results of a 10-point lesson test and a 5-point bonus test."""
    return GradingResults(name, tests=[
        CheckResult("build_cnn: all", "build_cnn", lesson_points, 10, PASSED if lesson_points == 10 else FAILED),
        CheckResult("filters: maps", "filters", bonus_points, 5, PASSED if bonus_points == 5 else FAILED, bonus=True)])


def test_the_histogram_draws_a_student_above_full_marks():
    # 105/100 in the issue: here 15 of 10, the highest possible, and 12.5 between full marks and it.
    summary = class_summary.summarise([with_bonus("ann", 10, 5), with_bonus("ben", 10, 0), with_bonus("cat", 5, 0),
                                       with_bonus("dan", 10, 2.5)])
    edges = summary_render.histogram_edges(summary.max_score, scores=summary.scores.values())
    assert edges[0] == 0 and edges[-1] >= 15 and edges[summary_render.HISTOGRAM_BINS] == 10
    counts = summary_render.histogram_counts(summary.scores.values(), summary.max_score)
    assert sum(counts) == 4 and counts[-1] >= 1
    figure = summary_render.histogram_figure(summary)
    drawn = sum(bar.get_height() for bar in figure.axes[0].patches if bar is not figure.axes[0].patch)
    assert drawn == 4
    markdown = summary_render.to_markdown(summary)
    assert f"[{edges[-2]:g}, {edges[-1]:g}]" in markdown and "4 submissions" in markdown


def test_one_student_reads_as_one_student():
    summary = class_summary.summarise([student("bob", head_ok=False)])
    markdown = summary_render.to_markdown(summary)
    assert "1 submission:" in markdown and ": 1 student (bob)" in markdown and "1 students" not in markdown
