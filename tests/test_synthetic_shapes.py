"""The synthetic shapes: deterministic, balanced, and labels that survive left-right mirroring only."""

import numpy as np
import pytest

from grader.training import synthetic_shapes
from grader.training.synthetic_shapes import CELLS, IMAGE_SIZE, NUM_CLASSES, draw_parameters, make_dataset, render

LAST_PIXEL = IMAGE_SIZE - 1
# Copy k of a mirrored image is drawn in the cell across the vertical (resp. horizontal) midline.
ACROSS_LEFT_RIGHT = [CELLS.index((row, 1 - column)) for row, column in CELLS]
ACROSS_TOP_BOTTOM = [CELLS.index((1 - row, column)) for row, column in CELLS]


@pytest.fixture(scope="module")
def params():
    params = draw_parameters(500, seed=3)
    params.pop("noise_seed")
    return params


def test_same_seed_gives_the_same_images():
    first, second = make_dataset(300, seed=7), make_dataset(300, seed=7)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_different_seeds_give_different_images():
    assert not np.array_equal(make_dataset(50, seed=0)[0], make_dataset(50, seed=1)[0])


@pytest.mark.parametrize("n", [0, 1, 37, 1000])
def test_shapes_and_dtypes(n):
    images, labels = make_dataset(n, seed=0)
    assert images.shape == (n, IMAGE_SIZE, IMAGE_SIZE, 3) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert set(labels.tolist()) <= set(range(NUM_CLASSES))


@pytest.mark.parametrize("n", [1000, 1005])
def test_labels_are_balanced(n):
    counts = np.bincount(make_dataset(n, seed=0)[1], minlength=NUM_CLASSES)
    assert counts.max() - counts.min() <= 1


def test_negative_n_is_refused():
    with pytest.raises(ValueError, match="Received: n=-1"):
        make_dataset(-1, seed=0)


def test_a_mirrored_draw_is_the_mirror_image_with_the_same_label(params):
    mirrored = dict(
        params,
        centre_x=LAST_PIXEL - params["centre_x"][:, ACROSS_LEFT_RIGHT],
        centre_y=params["centre_y"][:, ACROSS_LEFT_RIGHT],
        half_size=params["half_size"][:, ACROSS_LEFT_RIGHT],
    )
    np.testing.assert_array_equal(render(**mirrored), np.flip(render(**params), axis=2))


def test_a_vertically_flipped_draw_is_the_partner_class(params):
    flipped = dict(
        params,
        labels=params["labels"] ^ 1,  # class 2k <-> 2k+1
        centre_x=params["centre_x"][:, ACROSS_TOP_BOTTOM],
        centre_y=LAST_PIXEL - params["centre_y"][:, ACROSS_TOP_BOTTOM],
        half_size=params["half_size"][:, ACROSS_TOP_BOTTOM],
    )
    np.testing.assert_array_equal(render(**flipped), np.flip(render(**params), axis=1))


@pytest.mark.parametrize("family", synthetic_shapes.FAMILIES, ids=lambda f: f.__name__)
def test_each_family_is_not_its_own_upside_down(family):
    grid = np.linspace(-1.2, 1.2, 49)
    v, u = np.meshgrid(grid, grid, indexing="ij")
    upright, upside_down = family(np.abs(u), v), family(np.abs(u), -v)
    assert upright.any()
    assert (upright != upside_down).mean() > 0.05


def test_every_image_shows_its_shape_lighter_than_the_background(params):
    images = render(**params)
    is_foreground = np.all(images == params["foreground"][:, None, None, :], axis=-1)
    assert is_foreground.reshape(len(images), -1).mean(axis=1).min() > 0.05
    assert (params["foreground"].astype(int).sum(axis=1) >= params["background"].astype(int).sum(axis=1)).all()


def test_colour_does_not_give_the_label_away(params):
    mean_colour = np.array([params["foreground"][params["labels"] == c].mean(axis=0) for c in range(NUM_CLASSES)])
    # With 50 images per class, class means of uniform-ish colours differ by a few grey levels only.
    assert np.ptp(mean_colour, axis=0).max() < 40
