"""A synthetic image set of up to 10 classes for the training check (no download needed), drawn at the lesson's
input shape: 32x32 RGB for lesson 6 (the default), 28x28 grey for a 28x28x1 network, one class per network output.

Five shape families, each drawn in two vertical orientations, make the ten classes:

    0 triangle pointing up     1 triangle pointing down
    2 T                        3 upside-down T
    4 cup (open at the top)    5 cap (open at the bottom)
    6 chevron ^                7 chevron v
    8 box, top half filled     9 box, bottom half filled

Every shape is mirror-symmetric left to right, so a horizontal flip keeps the label; small rotations
(+/-18 degrees) and 10 % zoom keep it too. A vertical flip or a half turn turns class 2k into class 2k+1,
so a model whose augmentation uses them is taught that the two are the same and cannot separate them.

A lesson with fewer outputs draws the first classes only; sizes scale with the image (half sizes below are for 32
pixels), and a grey image has one channel. Each image shows one shape, light on a dark background, anywhere in the
frame. Why these choices:

- Contrast. Every colour channel of the shape is at least 120 grey levels above the background, which is
  dark. The earlier set drew two random colours at least 100 apart (RGB distance), the shape lighter only in
  total: a channel's edge could have either sign and be faint, and the bright backgrounds drowned the edges
  in the first layer's responses. The lesson's network sat at chance for 125-150 steps of 64 (~8,000 images)
  before it found the shapes; trials with one shape per image showed that contrast is what matters (random
  colours: still at chance after 6,000 images; every channel lighter by 55-255 on a background up to 100:
  2,400-4,000 images; this set: 1,200-1,600 images, 75-100 steps of 16). benchmarks/README.md has the table.
- Position. The shape's centre of mass, not its box, is placed uniformly at random, over the same range
  for every class, and each family is scaled to the same area: a linear model (one template per class)
  cannot tell classes apart by where the light pixels sit or how many there are, while a CNN recognises
  the shape wherever it is. The colours vary too, so no template brightness fits all images.
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
LAST_PIXEL = IMAGE_SIZE - 1
SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)  # the default lesson's images
MIN_HALF_SIZE = 5.0  # pixels from the shape's centre to the edge of its box at 32 pixels, before scaling to equal area
MAX_HALF_SIZE = 8.0
TOO_MANY_CLASSES = ("The synthetic set draws at most {most} classes; the lesson's network has {classes} outputs. "
                    "Expected a lesson with at most {most} classes, or --dataset naming another data set.")
BAD_SHAPE = ("The synthetic set draws square images of 1 or 3 channels, at least 16 pixels wide. Received: the "
             "lesson's input shape {shape}.")
POSITION_STEP = 1 / 64  # centres are quantised so that mirrored draws are bit-exact mirror images
BACKGROUND_LEVELS = (0, 50)  # each channel of the background, uniform in this range
FOREGROUND_LEVELS = (170, 255)  # each channel of the shape
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


def _moments(family, samples=601):
    """Return (area, centre of mass in v) of an upright family's mask, in units of its half size."""
    grid = np.linspace(-1.5, 1.5, samples)
    v, u = np.meshgrid(grid, grid, indexing="ij")
    mask = family(np.abs(u), v)
    return mask.mean() * 3.0**2, float((v * mask).sum() / mask.sum())


AREAS, CENTRES_OF_MASS = np.array([_moments(family) for family in FAMILIES]).T
SCALES = np.sqrt(AREAS.mean() / AREAS)  # each family's half size is multiplied by this: equal areas


def render(labels, centre_x, centre_y, half_size, foreground, background, size=IMAGE_SIZE):
    """Draw each label's shape and return uint8 images (n, size, size, channels) without noise.

    centre_x, centre_y (the middle of the shape's box) and half_size are (n,) arrays in image pixels;
    foreground and background are (n, channels) uint8 colours.
    """
    labels = np.asarray(labels)
    pixels = np.arange(size, dtype=np.float32)
    mask = np.zeros((len(labels), size, size), dtype=bool)
    for label in range(NUM_CLASSES):
        rows = np.flatnonzero(labels == label)
        size = np.asarray(half_size, dtype=np.float32)[rows, None, None]
        a = np.abs(pixels[None, None, :] - np.asarray(centre_x, dtype=np.float32)[rows, None, None]) / size
        v = (pixels[None, :, None] - np.asarray(centre_y, dtype=np.float32)[rows, None, None]) / size
        mask[rows] = FAMILIES[label // 2](a, -v if label % 2 else v)
    return np.where(mask[..., None], foreground[:, None, None, :], background[:, None, None, :])


def _colours(rng, n, channels=3):
    """Return random uint8 (foreground, background) colours, every channel of the foreground the lighter."""
    foreground = rng.uniform(*FOREGROUND_LEVELS, size=(n, channels))
    background = rng.uniform(*BACKGROUND_LEVELS, size=(n, channels))
    return np.round(foreground).astype(np.uint8), np.round(background).astype(np.uint8)


def _quantise(position):
    """Round image positions to POSITION_STEP."""
    return np.round(position / POSITION_STEP) * POSITION_STEP


def check_shape(shape, num_classes):
    """Raise ValueError unless the set can be drawn at this image shape with this many classes."""
    shape = tuple(shape)
    if len(shape) != 3 or shape[0] != shape[1] or shape[2] not in (1, 3) or not isinstance(shape[0], int) \
            or shape[0] < 16:
        raise ValueError(BAD_SHAPE.format(shape=shape))
    if not 2 <= num_classes <= NUM_CLASSES:
        raise ValueError(TOO_MANY_CLASSES.format(most=NUM_CLASSES, classes=num_classes))


def draw_parameters(n, seed, shape=SHAPE, num_classes=NUM_CLASSES):
    """Return the random labels, centres, sizes, colours and noise seed behind make_dataset(n, seed, ...)."""
    size, channels = shape[0], shape[2]
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes)
    family = labels // 2
    scale = size / IMAGE_SIZE  # 1.0 for the default lesson's 32 pixels: the same draws, bit for bit
    half_size = rng.uniform(MIN_HALF_SIZE * scale, MAX_HALF_SIZE * scale, size=n) * SCALES[family]
    # How far the centre of mass lies below the middle of the box (above it for an upside-down shape).
    mass_offset = CENTRES_OF_MASS[family] * np.where(labels % 2, -1, 1) * half_size
    # The box stays inside the image; the centre of mass ranges over the same span whichever way up.
    middle = (size - 1) / 2
    room_x = middle - half_size - 0.5
    room_y = room_x - np.abs(mass_offset)
    offset_x, offset_y = rng.uniform(-1, 1, size=(2, n))
    centre_x = _quantise(middle + offset_x * room_x)
    centre_y = _quantise(middle + offset_y * room_y - mass_offset)
    foreground, background = _colours(rng, n, channels)
    return dict(
        labels=labels,
        centre_x=centre_x,
        centre_y=centre_y,
        half_size=half_size,
        foreground=foreground,
        background=background,
        noise_seed=int(rng.integers(2**32)),
    )


def make_dataset(n, seed, shape=SHAPE, num_classes=NUM_CLASSES):
    """Return n images (uint8, (n, *shape)) and balanced labels (int64, (n,)) of num_classes, fixed by the seed."""
    if n < 0:
        raise ValueError(f"make_dataset needs a number of images n >= 0. Received: n={n}")
    check_shape(shape, num_classes)
    params = draw_parameters(n, seed, tuple(shape), num_classes)
    noise_seed = params.pop("noise_seed")
    images = render(**params, size=shape[0])
    # In place, in the noise's int16 array: one full-size int16 array at a time (~40 MiB for the check's 7,000 images).
    noisy = np.random.default_rng(noise_seed).integers(
        -NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=images.shape, dtype=np.int16
    )
    noisy += images
    return np.clip(noisy, 0, 255, out=noisy).astype(np.uint8), params["labels"].astype(np.int64)
