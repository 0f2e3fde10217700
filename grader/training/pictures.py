"""The training check's pictures, drawn with matplotlib as the lesson draws them (no display needed).

- the training curve: accuracy and loss over the run (one point per part of it, placed at the images trained on
  so far), with the pass threshold, chance and the final accuracy;
- the lesson's 4x8 grid of first-layer 3x3 RGB filters, each normalised on its own;
- the lesson's 2x8 panel of first-layer feature maps of one test image.

Figures are built with matplotlib.figure.Figure rather than pyplot: no global figure state to leak between
the submissions a batch worker grades, and PNGs are rendered by Agg whatever backend the machine has.
Each `*_figure` function returns the figure (tests read its titles and labels); each `save_*` writes a PNG of
FIGSIZE x DPI pixels and returns its path. `save_outcome_pictures` draws all three for a training outcome; a batch
hands in the same network many times, so it draws each outcome's pictures once per process and copies the bytes.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
CURVE_FIGSIZE = (10, 4)      # inches: 1000 x 400 pixels
# Legends go under the axes, never over the curves and the threshold line (tests/test_figure_legends.py).
LEGEND_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2), "ncols": 2, "fontsize": "small"}
FILTER_FIGSIZE = (8, 4)      # the lesson's plt.subplots(4, 8, figsize=(8, 4))
FEATURE_FIGSIZE = (10, 3)    # the lesson's plt.subplots(2, 8, figsize=(10, 3))
GRID_COLUMNS = 8
FEATURE_ROWS = 2
CHANCE = 0.1                 # ten classes

CURVE_TITLE = "Training check: accuracy and loss over the run"
FILTER_TITLE = "First-layer {kh}×{kw} filters (RGB)"
FEATURE_TITLE = "First-layer feature maps of one test image ({shown} of {total} filters)"
ACCURACY_LABEL = "accuracy (fraction of images right)"
LOSS_LABEL = "loss (cross-entropy)"
IMAGES_LABEL = "images trained on"
PARTS_LABEL = "part of the run"      # an outcome that did not record its image count
TRAIN_ACCURACY_LEGEND = "training accuracy"
HELD_OUT_LEGEND = "held-out accuracy {value:.2f}"
THRESHOLD_LEGEND = "pass threshold {value:.2f} (held-out)"
CHANCE_LEGEND = "chance {value:.2f} (1 in 10 classes)"
LOSS_LEGEND = "training loss"
FINAL_TEXT = "final training accuracy {train:.2f}"
FINAL_HELD_OUT_TEXT = "held-out accuracy {held_out:.2f} (threshold {threshold:.2f}): {verdict}"

OUTCOME_PICTURES = {"training_curve": "training_curve.png", "first_layer_filters": "first_layer_filters.png",
                    "feature_maps": "feature_maps.png"}
DRAWN_KEPT = 64              # outcomes whose PNG bytes a Grader keeps (about 150 KB each)

BAD_KERNEL = ("A filter grid needs a first-layer kernel (kernel_h, kernel_w, 3, filters) on RGB input. "
              "Received: shape {shape}")
BAD_FEATURE_MAPS = ("A feature-map panel needs the first layer's output for one image, (1, height, width, "
                    "filters) or (height, width, filters). Received: shape {shape}")


def normalise_filters(kernels):
    """Scale each filter of a (kh, kw, in, out) kernel to [0, 1] on its own, as the lesson does."""
    from grader.checker.checks.filters import normalised_filters

    return normalised_filters(np.asarray(kernels, dtype=np.float64))


def save_figure(figure: Figure, path) -> Path:
    """Write a figure as a PNG of its size in inches times DPI and return the path."""
    path = Path(path)
    figure.savefig(path, format="png", dpi=DPI)
    return path


# --- the training curve ---------------------------------------------------------------------------------


def training_curve_figure(history: dict, threshold: float | None = None,
                          held_out_accuracy: float | None = None, images: int = 0) -> Figure:
    """Return the figure of accuracy (left) and loss (right) over a run from its history dict.

    Each history point is the mean over one of its equal parts of the run. With the run's image count, a point is
    drawn at the images trained on by the end of its part; without it (0), at the part's number from 1.
    """
    accuracy = np.asarray(history.get("accuracy", []), dtype=np.float64)
    loss = np.asarray(history.get("loss", []), dtype=np.float64)
    figure = Figure(figsize=CURVE_FIGSIZE, layout="constrained")
    left, right = figure.subplots(1, 2)
    figure.suptitle(CURVE_TITLE)

    xs, x_label = _part_ends(len(accuracy), images)
    left.plot(xs, accuracy, marker="o", color="tab:orange", label=TRAIN_ACCURACY_LEGEND)
    if held_out_accuracy is not None and len(xs):
        left.plot([xs[-1]], [held_out_accuracy], marker="*", markersize=14, linestyle="none",
                  color="tab:purple", label=HELD_OUT_LEGEND.format(value=held_out_accuracy))
    if threshold is not None:
        left.axhline(threshold, color="tab:green", linestyle="--", label=THRESHOLD_LEGEND.format(value=threshold))
    left.axhline(CHANCE, color="grey", linestyle=":", label=CHANCE_LEGEND.format(value=CHANCE))
    left.set_ylim(0, 1)
    left.set_xlabel(x_label)
    left.set_ylabel(ACCURACY_LABEL)
    left.set_title("Accuracy")
    left.legend(**LEGEND_BELOW)
    left.text(0.98, 0.13, _final_text(accuracy, threshold, held_out_accuracy), transform=left.transAxes,
              ha="right", va="bottom", fontsize="small", bbox={"facecolor": "white", "edgecolor": "lightgrey"})

    xs, x_label = _part_ends(len(loss), images)
    right.plot(xs, loss, marker="o", color="tab:blue", label=LOSS_LEGEND)
    right.set_ylim(bottom=0)
    right.set_xlabel(x_label)
    right.set_ylabel(LOSS_LABEL)
    right.set_title("Loss")
    right.legend(**LEGEND_BELOW)
    for axes in (left, right):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    return figure


def _part_ends(parts, images):
    """Return (x positions, axis label) for `parts` history points of a run that trained on `images` images."""
    if images:
        return np.arange(1, parts + 1) * images / max(parts, 1), IMAGES_LABEL
    return np.arange(1, parts + 1), PARTS_LABEL


def _final_text(accuracy, threshold, held_out_accuracy):
    """Return the sentence written on the curve: the held-out verdict if known, else the last training accuracy."""
    if held_out_accuracy is not None and threshold is not None:
        verdict = "passed" if held_out_accuracy >= threshold else "below the threshold"
        return FINAL_HELD_OUT_TEXT.format(held_out=held_out_accuracy, threshold=threshold, verdict=verdict)
    if len(accuracy):
        return FINAL_TEXT.format(train=accuracy[-1])
    return "no training recorded"


def save_training_curve(history: dict, path, threshold: float | None = None,
                        held_out_accuracy: float | None = None, images: int = 0) -> Path:
    """Save the training curve of a history dict as a PNG and return the path."""
    return save_figure(training_curve_figure(history, threshold, held_out_accuracy, images), path)


# --- first-layer filters ---------------------------------------------------------------------------------


def filter_grid_figure(kernels) -> Figure:
    """Return the lesson's grid of first-layer filters (4x8 for 32), each filter normalised on its own."""
    kernels = np.asarray(kernels)
    if kernels.ndim != 4 or kernels.shape[2] != 3:
        raise ValueError(BAD_KERNEL.format(shape=kernels.shape))
    kh, kw, _, count = kernels.shape
    shown = normalise_filters(kernels)
    figure = Figure(figsize=FILTER_FIGSIZE, layout="tight")
    axes = figure.subplots(max(1, -(-count // GRID_COLUMNS)), GRID_COLUMNS, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index < count:
            ax.imshow(shown[:, :, :, index], interpolation="nearest")
        ax.set_axis_off()
    figure.suptitle(FILTER_TITLE.format(kh=kh, kw=kw))
    return figure


def save_filter_grid(kernels, path) -> Path:
    """Save the lesson's grid of first-layer filters (4x8 for 32 filters) as a PNG and return the path."""
    return save_figure(filter_grid_figure(kernels), path)


# --- first-layer feature maps -----------------------------------------------------------------------------


def feature_maps_figure(feature_maps) -> Figure:
    """Return the lesson's 2x8 panel: the first 16 feature maps of one image, in viridis."""
    maps = np.asarray(feature_maps, dtype=np.float64)
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim != 3:
        raise ValueError(BAD_FEATURE_MAPS.format(shape=np.shape(feature_maps)))
    total = maps.shape[-1]
    shown = min(total, FEATURE_ROWS * GRID_COLUMNS)
    figure = Figure(figsize=FEATURE_FIGSIZE, layout="constrained")
    axes = figure.subplots(FEATURE_ROWS, GRID_COLUMNS)
    for index, ax in enumerate(axes.flat):
        if index < shown:
            ax.imshow(maps[:, :, index], cmap="viridis")
            ax.set_title(f"filter {index}", fontsize="x-small")
        ax.set_axis_off()
    figure.suptitle(FEATURE_TITLE.format(shown=shown, total=total))
    return figure


def save_feature_maps(feature_maps, path) -> Path:
    """Save the lesson's 2x8 feature-map panel as a PNG and return the path."""
    return save_figure(feature_maps_figure(feature_maps), path)


# --- the pictures of one training outcome ----------------------------------------------------------------------


def _outcome_digest(outcome) -> str:
    """Return a digest of everything the outcome's pictures show."""
    shown = [outcome.history, outcome.threshold, outcome.accuracy, getattr(outcome, "images", 0)]
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True, default=float).encode())
    for array in (outcome.first_kernel, getattr(outcome, "feature_maps", None)):
        if array is not None:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode() + array.tobytes())
    return digest.hexdigest()


def save_outcome_pictures(outcome, folder, drawn: dict | None = None) -> dict:
    """Save the training curve, the filter grid and the feature-map panel of an outcome; return {name: path}.

    drawn: {digest of an outcome's pictured data: {name: PNG bytes}}, kept by the caller (the process's Grader):
    outcomes with the same data get the same bytes, drawn once. None: drawn every time.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = _outcome_digest(outcome)
    if drawn is None or key not in drawn:
        paths = {"training_curve": save_training_curve(outcome.history, folder / OUTCOME_PICTURES["training_curve"],
                                                       threshold=outcome.threshold, held_out_accuracy=outcome.accuracy,
                                                       images=getattr(outcome, "images", 0)),
                 "first_layer_filters": save_filter_grid(outcome.first_kernel,
                                                         folder / OUTCOME_PICTURES["first_layer_filters"])}
        if getattr(outcome, "feature_maps", None) is not None:
            paths["feature_maps"] = save_feature_maps(outcome.feature_maps, folder / OUTCOME_PICTURES["feature_maps"])
        if drawn is not None:
            if len(drawn) >= DRAWN_KEPT:
                drawn.pop(next(iter(drawn)))
            drawn[key] = {name: path.read_bytes() for name, path in paths.items()}
        return paths
    paths = {}
    for name, data in drawn[key].items():
        paths[name] = folder / OUTCOME_PICTURES[name]
        paths[name].write_bytes(data)
    return paths
