"""PNG pictures of a training check, drawn with numpy alone (no matplotlib in the grader's dependencies).

save_filter_grid draws the lesson's 4x8 grid of first-layer 3x3 RGB filters; save_training_curve draws
loss and accuracy per epoch. PNG files are written with zlib and struct.
"""

import struct
import zlib
from pathlib import Path

import numpy as np

GRID_COLUMNS = 8
FILTER_SCALE = 12  # each 3x3 filter becomes a 36x36 block
GAP = 2
GAP_COLOUR = (255, 255, 255)
CURVE_PANEL = (200, 260)  # height, width of each panel in pixels
CURVE_PAD = 16
LOSS_COLOUR = (31, 119, 180)
ACCURACY_COLOUR = (255, 127, 14)
AXIS_COLOUR = (0, 0, 0)
CHANCE_COLOUR = (150, 150, 150)
THRESHOLD_COLOUR = (44, 160, 44)
CHANCE = 0.1


def encode_png(image):
    """Return the PNG bytes of an RGB uint8 image (H, W, 3)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encode_png needs a uint8 (H, W, 3) array. Received: {image.dtype} {image.shape}")
    height, width, _ = image.shape

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, -1)], axis=1)  # filter 0
    pixels = zlib.compress(rows.tobytes(), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def write_png(image, path):
    """Write an RGB uint8 image to path as PNG and return the path."""
    path = Path(path)
    path.write_bytes(encode_png(image))
    return path


def normalise_filters(kernels):
    """Scale each filter of a (kh, kw, in, out) kernel to [0, 1] on its own, as the lesson does."""
    kernels = np.asarray(kernels, dtype=np.float64)
    low = kernels.min(axis=(0, 1, 2), keepdims=True)
    high = kernels.max(axis=(0, 1, 2), keepdims=True)
    return (kernels - low) / (high - low + 1e-8)


def filter_grid(kernels, *, columns=GRID_COLUMNS, scale=FILTER_SCALE, gap=GAP):
    """Return the RGB uint8 image of a (kh, kw, 3, F) kernel's filters, `columns` to a row, each scaled up."""
    kernels = np.asarray(kernels)
    if kernels.ndim != 4 or kernels.shape[2] != 3:
        raise ValueError(
            f"filter_grid needs a first-layer kernel (kh, kw, 3, filters) on RGB input. Received: shape {kernels.shape}"
        )
    kh, kw, _, count = kernels.shape
    pixels = np.round(normalise_filters(kernels) * 255).astype(np.uint8)
    rows = -(-count // columns)
    cell_h, cell_w = kh * scale, kw * scale
    image = np.empty((gap + rows * (cell_h + gap), gap + columns * (cell_w + gap), 3), np.uint8)
    image[:] = GAP_COLOUR
    for index in range(count):
        row, column = divmod(index, columns)
        block = np.repeat(np.repeat(pixels[:, :, :, index], scale, axis=0), scale, axis=1)  # nearest neighbour
        top, left = gap + row * (cell_h + gap), gap + column * (cell_w + gap)
        image[top : top + cell_h, left : left + cell_w] = block
    return image


def save_filter_grid(kernels, path):
    """Save the lesson's grid of first-layer filters (4x8 for 32 filters) as a PNG and return the path."""
    return write_png(filter_grid(kernels), path)


def _draw_polyline(panel, xs, ys, colour, thickness=2):
    """Draw straight segments through the points (xs, ys), in panel pixels, onto panel."""
    height, width, _ = panel.shape
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    if len(points) == 1:
        points = np.repeat(points, 2, axis=0)
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) * 2 + 2
        t = np.linspace(0, 1, steps)
        for dx in range(thickness):
            for dy in range(thickness):
                px = np.clip(np.round(x0 + (x1 - x0) * t) + dx, 0, width - 1).astype(int)
                py = np.clip(np.round(y0 + (y1 - y0) * t) + dy, 0, height - 1).astype(int)
                panel[py, px] = colour


def _draw_markers(panel, xs, ys, colour, radius=2):
    """Draw a small square at each point."""
    height, width, _ = panel.shape
    for x, y in zip(np.round(xs).astype(int), np.round(ys).astype(int)):
        rows = slice(max(y - radius, 0), min(y + radius + 1, height))
        panel[rows, max(x - radius, 0) : min(x + radius + 1, width)] = colour


def _draw_dashed(panel, y, colour):
    """Draw a dashed horizontal line at row y."""
    y = int(np.clip(round(y), 0, panel.shape[0] - 1))
    for start in range(0, panel.shape[1], 8):
        panel[y, start : start + 4] = colour


def _panel(values, top, colour, lines=()):
    """Return one plot panel: axes, the dashed reference lines (value, colour), and values per epoch from 0 to top."""
    height, width = CURVE_PANEL
    panel = np.full((height + 2 * CURVE_PAD, width + 2 * CURVE_PAD, 3), 255, np.uint8)
    plot = panel[CURVE_PAD : CURVE_PAD + height, CURVE_PAD : CURVE_PAD + width]

    def to_y(value):
        return (height - 1) * (1 - np.clip(np.asarray(value, dtype=np.float64) / top, 0, 1))

    for value, line_colour in lines:
        _draw_dashed(plot, to_y(value), line_colour)
    if len(values):
        xs = np.linspace(8, width - 8, len(values)) if len(values) > 1 else np.array([width / 2])
        ys = to_y(values)
        _draw_polyline(plot, xs, ys, colour)
        _draw_markers(plot, xs, ys, colour)
    plot[:, :2] = AXIS_COLOUR  # y axis
    plot[-2:, :] = AXIS_COLOUR  # x axis
    for fraction in (0.25, 0.5, 0.75, 1.0):  # ticks at quarters of the y range
        tick = int(round((height - 1) * (1 - fraction)))
        panel[CURVE_PAD + tick, CURVE_PAD - 6 : CURVE_PAD] = AXIS_COLOUR
    return panel


def training_curve(history, threshold=None):
    """Return an RGB uint8 image: loss per epoch (blue, left) and accuracy per epoch (orange, right, 0 to 1).

    The accuracy panel shows chance (10 %) as a grey dashed line and the threshold, if given, as a green one.
    """
    loss = np.asarray(history.get("loss", []), dtype=np.float64)
    accuracy = np.asarray(history.get("accuracy", []), dtype=np.float64)
    finite = loss[np.isfinite(loss)]
    loss_top = float(finite.max()) * 1.1 if finite.size and finite.max() > 0 else 1.0
    lines = [(CHANCE, CHANCE_COLOUR)] + ([(threshold, THRESHOLD_COLOUR)] if threshold is not None else [])
    left = _panel(np.nan_to_num(loss, nan=loss_top, posinf=loss_top), loss_top, LOSS_COLOUR)
    right = _panel(accuracy, 1.0, ACCURACY_COLOUR, lines)
    return np.concatenate([left, right], axis=1)


def save_training_curve(history, path, threshold=None):
    """Save loss and accuracy per epoch from a history dict as a PNG and return the path."""
    return write_png(training_curve(history, threshold), path)
