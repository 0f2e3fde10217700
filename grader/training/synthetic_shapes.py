"""A synthetic 10-class, 32x32 RGB image set for the training check (no download needed).

Five shape families, each drawn in two vertical orientations, make the ten classes:

    0 triangle pointing up     1 triangle pointing down
    2 T                        3 upside-down T
    4 cup (open at the top)    5 cap (open at the bottom)
    6 chevron ^                7 chevron v
    8 box, top half filled     9 box, bottom half filled

Every shape is mirror-symmetric left to right, so a horizontal flip keeps the label; small rotations
(+/-18 degrees) and 10 % zoom keep it too. A vertical flip or a half turn turns class 2k into class 2k+1,
so a model whose augmentation uses them is taught that the two are the same and cannot separate them.

Each image shows its shape four times, once in each 16x16 quarter, at a random position and size; the
colours are random too, the shape always lighter than the background. Four copies and a fixed contrast
sign are what let the lesson's network learn the set within the check's budget of a few seconds.
"""

import numpy as np

CLASS_NAMES = (
    "triangle_up",
    "triangle_down",
    "t",
    "t_upside_down",
    "cup",
    "cap",
    "chevron_up",
    "chevron_down",
    "box_top_filled",
    "box_bottom_filled",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 32
CELL_SIZE = 16  # one copy of the shape per 16x16 quarter
CELLS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, column) of each copy; mirroring swaps columns
MIN_HALF_SIZE = 4.0  # pixels from a copy's centre to its edge
MAX_HALF_SIZE = 7.0
POSITION_STEP = 1 / 64  # centres are quantised so that mirrored draws are bit-exact mirror images
MIN_COLOUR_DISTANCE = 100.0  # Euclidean RGB distance between shape and background
COLOUR_CANDIDATES = 4
NOISE_AMPLITUDE = 12  # uniform pixel noise, +/- this many grey levels


def _triangle(a, v):
    """Return the mask of a filled triangle with its apex at the top."""
    return (v >= -1) & (v <= 1) & (a <= (v + 1) / 2)


def _tee(a, v):
    """Return the mask of a T: a bar across the top and a stem down the middle."""
    bar = (v >= -1) & (v <= -0.45) & (a <= 1)
    stem = (a <= 0.28) & (v >= -1) & (v <= 1)
    return bar | stem


def _cup(a, v):
    """Return the mask of a thick U, open at the top."""
    outer = (a <= 1) & (v >= -1) & (v <= 1)
    hollow = (a < 0.45) & (v < 0.45)
    return outer & ~hollow


def _chevron(a, v):
    """Return the mask of a thick ^ whose apex is at the top."""
    centre_line = -0.8 + 1.4 * a
    return (a <= 1) & (np.abs(v - centre_line) <= 0.3)


def _half_box(a, v):
    """Return the mask of a square frame whose top half is filled."""
    ring = np.maximum(a, np.abs(v))
    return (ring <= 1) & ((ring >= 0.72) | (v <= 0))


# Class 2k is family k drawn upright, class 2k+1 the same family upside down. Each family sees only
# a = |x| / size (so it is symmetric left to right) and v = y / size, with y growing downwards.
FAMILIES = (_triangle, _tee, _cup, _chevron, _half_box)


def render(labels, centre_x, centre_y, half_size, foreground, background):
    """Draw the copies of each label's shape and return uint8 images (n, 32, 32, 3) without noise.

    centre_x, centre_y and half_size are (n, 4) arrays in image pixels, one column per cell of CELLS;
    foreground and background are (n, 3) uint8 colours.
    """
    labels = np.asarray(labels)
    mask = np.zeros((len(labels), IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for copy, (row, column) in enumerate(CELLS):
        ys = np.arange(row * CELL_SIZE, (row + 1) * CELL_SIZE, dtype=np.float32)
        xs = np.arange(column * CELL_SIZE, (column + 1) * CELL_SIZE, dtype=np.float32)
        for label in range(NUM_CLASSES):
            rows = np.flatnonzero(labels == label)
            size = half_size[rows, copy, None, None].astype(np.float32)
            a = np.abs(xs[None, None, :] - centre_x[rows, copy, None, None].astype(np.float32)) / size
            v = (ys[None, :, None] - centre_y[rows, copy, None, None].astype(np.float32)) / size
            shape = FAMILIES[label // 2](a, -v if label % 2 else v)
            mask[rows, row * CELL_SIZE : (row + 1) * CELL_SIZE, column * CELL_SIZE : (column + 1) * CELL_SIZE] = shape
    return np.where(mask[..., None], foreground[:, None, None, :], background[:, None, None, :])


def _colours(rng, n):
    """Return random uint8 (foreground, background) colours, the foreground the lighter of the two."""
    background = rng.uniform(0, 255, size=(n, 3))
    candidates = rng.uniform(0, 255, size=(n, COLOUR_CANDIDATES, 3))
    distance = np.linalg.norm(candidates - background[:, None, :], axis=-1)
    far_enough = distance >= MIN_COLOUR_DISTANCE
    # The first candidate far enough away, or the farthest one if none is.
    choice = np.where(far_enough.any(axis=1), far_enough.argmax(axis=1), distance.argmax(axis=1))
    foreground = candidates[np.arange(n), choice]
    swap = (foreground.sum(axis=1) < background.sum(axis=1))[:, None]
    foreground, background = np.where(swap, background, foreground), np.where(swap, foreground, background)
    return np.round(foreground).astype(np.uint8), np.round(background).astype(np.uint8)


def draw_parameters(n, seed):
    """Return the random labels, centres, sizes, colours and noise seed behind make_dataset(n, seed)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % NUM_CLASSES)
    half_size = rng.uniform(MIN_HALF_SIZE, MAX_HALF_SIZE, size=(n, len(CELLS)))
    # Keep each copy inside its own cell; a cell's middle lies between its pixels 7 and 8.
    room = (CELL_SIZE - 1) / 2 - half_size - 0.5
    cell_middle = np.array([[(CELL_SIZE - 1) / 2 + CELL_SIZE * cell[axis] for cell in CELLS] for axis in (0, 1)])
    offsets = rng.uniform(-1, 1, size=(2, n, len(CELLS))) * room
    centre_y, centre_x = np.round((cell_middle[:, None, :] + offsets) / POSITION_STEP) * POSITION_STEP
    foreground, background = _colours(rng, n)
    return dict(
        labels=labels,
        centre_x=centre_x,
        centre_y=centre_y,
        half_size=half_size,
        foreground=foreground,
        background=background,
        noise_seed=int(rng.integers(2**32)),
    )


def make_dataset(n, seed):
    """Return n images (uint8, (n, 32, 32, 3)) and balanced labels (int64, (n,)), fixed by the seed."""
    if n < 0:
        raise ValueError(f"make_dataset needs a number of images n >= 0. Received: n={n}")
    params = draw_parameters(n, seed)
    noise_seed = params.pop("noise_seed")
    images = render(**params).astype(np.int16)
    images += np.random.default_rng(noise_seed).integers(
        -NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=images.shape, dtype=np.int16
    )
    return np.clip(images, 0, 255).astype(np.uint8), params["labels"].astype(np.int64)
