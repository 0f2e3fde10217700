"""Figures are readable: no legend is drawn over the bars, curves or lines it explains.

Checked on the drawn matplotlib artists (not on a screenshot): each legend's box in display coordinates against
every bar's box and every line's drawn path, after the figure's layout has run.
"""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from grader.training.pictures import training_curve_figure

THRESHOLD = 0.726


def overlaps(figure):
    """Return 'legend over artist' descriptions for every legend of a drawn figure that covers a data artist."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    found = []
    for axes in figure.axes:
        legend = axes.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        for artist in axes.get_children():
            if isinstance(artist, Line2D) and artist.get_visible() and len(artist.get_xdata()):
                path = artist.get_transform().transform_path(artist.get_path())
                clip = axes.bbox
                inside = [point for point in path.vertices if clip.contains(*point)]
                if path.intersects_bbox(box, filled=False) or any(box.contains(*point) for point in inside):
                    found.append(f"{axes.get_title() or 'axes'}: legend over the line {artist.get_label()!r}")
            elif isinstance(artist, Rectangle) and artist is not axes.patch and artist.get_height():
                if artist.get_window_extent(renderer).overlaps(box):
                    found.append(f"{axes.get_title() or 'axes'}: legend over a bar at x={artist.get_x():g}")
        for label in (axes.xaxis.label, axes.yaxis.label, axes.title):
            if label.get_text() and label.get_window_extent(renderer).overlaps(box):
                found.append(f"{axes.get_title() or 'axes'}: legend over the text {label.get_text()!r}")
    return found


def history(epochs, start, end):
    accuracy = np.linspace(start, end, epochs)
    return {"accuracy": accuracy.tolist(), "loss": (2.3 * (1.05 - accuracy)).tolist()}


@pytest.mark.parametrize("name, epochs, start, end", [
    ("learns", 12, 0.15, 0.99),           # the reference: rises through the threshold to the top
    ("flat_at_chance", 6, 0.10, 0.11),    # untrainable: stays on the chance line
    ("one_epoch", 1, 0.80, 0.80),
])
@pytest.mark.parametrize("images", [0, 4160])  # parts numbered, or placed at the images trained on (a real run's)
def test_the_training_curve_s_legends_cover_no_curve_or_line(name, epochs, start, end, images):
    figure = training_curve_figure(history(epochs, start, end), threshold=THRESHOLD, held_out_accuracy=end,
                                   images=images)
    assert overlaps(figure) == [], name


def test_the_class_histogram_s_legend_covers_no_bar_or_line():
    from grader import summary as class_summary
    from grader.render import summary as summary_render
    from grader.results import FAILED, PASSED, CheckResult, GradingResults

    def graded(name, points, bonus):
        return GradingResults(name, tests=[
            CheckResult("build_cnn: all", "build_cnn", points, 100, PASSED if points == 100 else FAILED),
            CheckResult("filters: maps", "filters", bonus, 5, PASSED if bonus else FAILED, bonus=True)])

    # Bars at both ends and in the middle, a bonus past full marks, lines in between.
    scores = [(3, 0), (8, 0), (15, 0), (45, 0), (52, 5), (60, 0), (88, 5), (100, 0), (100, 5), (100, 5)]
    summary = class_summary.summarise([graded(f"s{i}", points, bonus) for i, (points, bonus) in enumerate(scores)])
    assert overlaps(summary_render.histogram_figure(summary)) == []
