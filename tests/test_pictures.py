"""The training check's pictures: real PNGs of the expected size, figures that carry their titles and labels."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.training import pictures

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HISTORY = {"loss": [2.3, 1.6, 1.1, 0.8], "accuracy": [0.12, 0.41, 0.63, 0.74]}


def png_size(path):
    """Return (width, height) from a PNG file's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG: it starts with {data[:8]!r}"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pixels(figsize):
    """Return the (width, height) in pixels of a figure of figsize inches saved by the module."""
    return (round(figsize[0] * pictures.DPI), round(figsize[1] * pictures.DPI))


def legend_texts(axes):
    return [text.get_text() for text in axes.get_legend().get_texts()]


def all_texts(figure):
    """Return every text artist's string on the figure and its axes."""
    found = [text.get_text() for text in figure.texts]
    for axes in figure.axes:
        found += [text.get_text() for text in axes.texts]
    return found


def test_training_curve_is_a_png_of_the_figure_size(tmp_path):
    path = pictures.save_training_curve(HISTORY, tmp_path / "curve.png", threshold=0.5)
    assert path == tmp_path / "curve.png"
    assert png_size(path) == pixels(pictures.CURVE_FIGSIZE)


def test_training_curve_has_title_axis_labels_and_legends():
    figure = pictures.training_curve_figure(HISTORY, threshold=0.5, held_out_accuracy=0.71)
    assert figure.get_suptitle() == pictures.CURVE_TITLE
    accuracy, loss = figure.axes
    assert (accuracy.get_xlabel(), accuracy.get_ylabel()) == ("part of the run", pictures.ACCURACY_LABEL)
    assert (loss.get_xlabel(), loss.get_ylabel()) == ("part of the run", pictures.LOSS_LABEL)
    assert "epoch" not in figure.get_suptitle()  # the check's history is parts of one run, not epochs
    assert legend_texts(accuracy) == ["training accuracy", "held-out accuracy 0.71",
                                      "pass threshold 0.50 (held-out)", "chance 0.10 (1 in 10 classes)"]
    assert legend_texts(loss) == ["training loss"]
    assert "held-out accuracy 0.71 (threshold 0.50): passed" in all_texts(figure)


def test_training_curve_plots_the_history_per_part_from_one():
    accuracy, loss = pictures.training_curve_figure(HISTORY).axes
    xs, ys = accuracy.get_lines()[0].get_data()
    assert list(xs) == [1, 2, 3, 4] and list(ys) == HISTORY["accuracy"]
    assert list(loss.get_lines()[0].get_data()[1]) == HISTORY["loss"]
    assert accuracy.get_ylim() == (0, 1)


def test_training_curve_places_each_part_at_the_images_trained_on_by_its_end():
    accuracy, loss = pictures.training_curve_figure(HISTORY, held_out_accuracy=0.7, images=2000).axes
    assert list(accuracy.get_lines()[0].get_data()[0]) == [500, 1000, 1500, 2000]
    assert list(accuracy.get_lines()[1].get_data()[0]) == [2000]  # the held-out star at the run's end
    assert list(loss.get_lines()[0].get_data()[0]) == [500, 1000, 1500, 2000]
    assert accuracy.get_xlabel() == loss.get_xlabel() == "images trained on"


def test_training_curve_without_held_out_accuracy_writes_the_last_training_accuracy():
    figure = pictures.training_curve_figure(HISTORY, threshold=0.5)
    assert "final training accuracy 0.74" in all_texts(figure)
    assert "held-out accuracy" not in " ".join(legend_texts(figure.axes[0]))


def test_training_curve_says_when_the_held_out_accuracy_is_below_the_threshold():
    figure = pictures.training_curve_figure(HISTORY, threshold=0.5, held_out_accuracy=0.2)
    assert "held-out accuracy 0.20 (threshold 0.50): below the threshold" in all_texts(figure)


def test_training_curve_of_an_empty_history_still_draws(tmp_path):
    path = pictures.save_training_curve({}, tmp_path / "empty.png")
    assert png_size(path) == pixels(pictures.CURVE_FIGSIZE)


def test_filter_grid_is_the_lessons_4x8_grid_with_its_title(tmp_path):
    kernels = np.random.default_rng(0).normal(size=(3, 3, 3, 32))
    figure = pictures.filter_grid_figure(kernels)
    assert figure.get_suptitle() == "First-layer 3×3 filters (RGB)"
    assert len(figure.axes) == 32
    first_rows = {ax.get_subplotspec().rowspan.start for ax in figure.axes}
    assert first_rows == {0, 1, 2, 3}
    # Filter 9 sits in row 1, column 1, normalised on its own as the lesson does.
    shown = figure.axes[9].get_images()[0].get_array()
    np.testing.assert_allclose(shown, pictures.normalise_filters(kernels)[:, :, :, 9])
    path = pictures.save_filter_grid(kernels, tmp_path / "filters.png")
    assert png_size(path) == pixels(pictures.FILTER_FIGSIZE)


def test_filter_grid_rejects_a_kernel_that_is_not_on_rgb_input():
    with pytest.raises(ValueError) as info:
        pictures.filter_grid_figure(np.zeros((3, 3, 32, 64)))
    assert str(info.value) == pictures.BAD_KERNEL.format(shape=(3, 3, 32, 64))


def test_feature_maps_panel_is_the_lessons_2x8_panel(tmp_path):
    maps = np.random.default_rng(1).random((1, 32, 32, 32))
    figure = pictures.feature_maps_figure(maps)
    assert figure.get_suptitle() == "First-layer feature maps of one test image (16 of 32 filters)"
    assert len(figure.axes) == 16
    assert [ax.get_title() for ax in figure.axes[:2]] == ["filter 0", "filter 1"]
    image = figure.axes[5].get_images()[0]
    assert image.get_cmap().name == "viridis"
    np.testing.assert_allclose(image.get_array(), maps[0, :, :, 5])
    path = pictures.save_feature_maps(maps, tmp_path / "maps.png")
    assert png_size(path) == pixels(pictures.FEATURE_FIGSIZE)


def test_feature_maps_panel_rejects_a_batch_of_images():
    with pytest.raises(ValueError) as info:
        pictures.feature_maps_figure(np.zeros((2, 8, 8, 4)))
    assert "Received: shape (2, 8, 8, 4)" in str(info.value)


WARM_UP = """
import sys

from grader.grade import warm_up_keras

warm_up_keras()
print("keras" in sys.modules, "matplotlib" in sys.modules)
from grader.training import pictures

curve = pictures.save_training_curve({"loss": [2.0, 1.0], "accuracy": [0.3, 0.6]}, sys.argv[1])
print(curve.stat().st_size > 0)
"""


def test_the_grader_imports_keras_without_matplotlib_and_still_draws(tmp_path):
    """Keras's own import of pyplot (for keras.visualization) is left out of the grader; the pictures get matplotlib."""
    done = subprocess.run([sys.executable, "-c", WARM_UP, str(tmp_path / "curve.png")], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "False", "True"]
