"""The synthetic shapes: deterministic, balanced, labels that survive left-right mirroring only, no template."""

import numpy as np
import pytest

from grader.training import synthetic_shapes
from grader.training.synthetic_shapes import (
    IMAGE_SIZE,
    LAST_PIXEL,
    NUM_CLASSES,
    draw_parameters,
    make_dataset,
    render,
)


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
    mirrored = dict(params, centre_x=LAST_PIXEL - params["centre_x"])
    np.testing.assert_array_equal(render(**mirrored), np.flip(render(**params), axis=2))


def test_a_vertically_flipped_draw_is_the_partner_class(params):
    flipped = dict(params, labels=params["labels"] ^ 1, centre_y=LAST_PIXEL - params["centre_y"])  # 2k <-> 2k+1
    np.testing.assert_array_equal(render(**flipped), np.flip(render(**params), axis=1))


@pytest.mark.parametrize("family", synthetic_shapes.FAMILIES, ids=lambda f: f.__name__)
def test_each_family_is_not_its_own_upside_down(family):
    grid = np.linspace(-1.2, 1.2, 49)
    v, u = np.meshgrid(grid, grid, indexing="ij")
    upright, upside_down = family(np.abs(u), v), family(np.abs(u), -v)
    assert upright.any()
    assert (upright != upside_down).mean() > 0.05


def test_every_image_shows_its_whole_shape_lighter_than_the_background_in_every_channel(params):
    images = render(**params)
    is_foreground = np.all(images == params["foreground"][:, None, None, :], axis=-1)
    assert is_foreground.reshape(len(images), -1).mean(axis=1).min() > 0.03
    # The shape stays inside the frame: the outermost rows and columns are background.
    border = np.concatenate([is_foreground[:, [0, -1], :].reshape(len(images), -1),
                             is_foreground[:, :, [0, -1]].reshape(len(images), -1)], axis=1)
    assert not border.any()
    contrast = params["foreground"].astype(int) - params["background"].astype(int)
    assert contrast.min() >= 120


@pytest.fixture(scope="module")
def many():
    params = draw_parameters(5000, seed=4)
    images = render(**{k: v for k, v in params.items() if k != "noise_seed"})
    return params, np.all(images == params["foreground"][:, None, None, :], axis=-1)


def test_light_pixel_count_does_not_give_the_label_away(many):
    params, mask = many
    area = mask.sum(axis=(1, 2))
    per_class = np.array([area[params["labels"] == c].mean() for c in range(NUM_CLASSES)])
    # Unscaled, a chevron would cover 40 % of the area of a half-filled box of the same size.
    assert np.ptp(per_class) / area.mean() < 0.08, per_class


def test_centre_of_mass_does_not_give_the_label_away(many):
    params, mask = many
    rows = np.arange(IMAGE_SIZE)
    centre_of_mass_y = (mask.sum(axis=2) * rows).sum(axis=1) / mask.sum(axis=(1, 2))
    per_class = np.array([centre_of_mass_y[params["labels"] == c].mean() for c in range(NUM_CLASSES)])
    # Where the light pixels sit, on average, is the same for every class to within a fraction of a pixel,
    # up/down partners included (placed by the box's middle, the triangles' would lie ~4.6 pixels apart).
    assert np.ptp(per_class) < 0.6, per_class


def test_colour_does_not_give_the_label_away(params):
    mean_colour = np.array([params["foreground"][params["labels"] == c].mean(axis=0) for c in range(NUM_CLASSES)])
    # With 50 images per class, class means of uniform-ish colours differ by a few grey levels only.
    assert np.ptp(mean_colour, axis=0).max() < 40
