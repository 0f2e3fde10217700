"""PNG pictures drawn without matplotlib: valid files of the expected size and content."""

import struct
import zlib

import numpy as np
import pytest

from grader.training import pictures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(data):
    """Return the RGB uint8 image in PNG bytes written by pictures.encode_png."""
    assert data[:8] == PNG_SIGNATURE
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour_type) == (8, 2)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, 3)


def test_encode_png_round_trips():
    image = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_png(pictures.encode_png(image)), image)


def test_encode_png_refuses_other_arrays():
    with pytest.raises(ValueError, match=r"Received: float64 \(4, 4\)"):
        pictures.encode_png(np.zeros((4, 4)))


def test_filter_grid_is_4_by_8_filters_scaled_up(tmp_path):
    kernels = np.random.default_rng(1).normal(size=(3, 3, 3, 32))
    path = pictures.save_filter_grid(kernels, tmp_path / "filters.png")
    image = read_png(path.read_bytes())
    cell = 3 * pictures.FILTER_SCALE + pictures.GAP
    assert image.shape == (pictures.GAP + 4 * cell, pictures.GAP + 8 * cell, 3)
    # Filter 9 (row 1, column 1): its top-left pixel, normalised on its own, scaled up by nearest neighbour.
    expected = np.round(pictures.normalise_filters(kernels)[0, 0, :, 9] * 255)
    top = left = pictures.GAP + cell
    block = image[top : top + pictures.FILTER_SCALE, left : left + pictures.FILTER_SCALE]
    assert (block == expected.astype(np.uint8)).all()


def test_filter_grid_refuses_a_kernel_that_is_not_rgb():
    with pytest.raises(ValueError, match=r"Received: shape \(3, 3, 32, 64\)"):
        pictures.filter_grid(np.zeros((3, 3, 32, 64)))


@pytest.mark.parametrize(
    "history",
    [
        {"loss": [2.3, 2.2, 1.6], "accuracy": [0.1, 0.13, 0.4]},
        {"loss": [2.3], "accuracy": [0.1]},
        {"loss": [], "accuracy": []},
        {"loss": [float("nan"), 1.0], "accuracy": [0.1, 0.2]},
    ],
)
def test_training_curve_is_two_panels(tmp_path, history):
    path = pictures.save_training_curve(history, tmp_path / "curve.png", threshold=0.5)
    image = read_png(path.read_bytes())
    height, width = pictures.CURVE_PANEL
    assert image.shape == (height + 2 * pictures.CURVE_PAD, 2 * (width + 2 * pictures.CURVE_PAD), 3)
    if history["accuracy"]:
        assert (image == pictures.ACCURACY_COLOUR).all(axis=-1).any()
    assert (image == pictures.THRESHOLD_COLOUR).all(axis=-1).any()
