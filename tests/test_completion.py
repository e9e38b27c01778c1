"""Patch completion commits to real pixels: no colour in the fill that the photo does not have (an average of red
stripes and blue dots is a purple that exists nowhere), and a horizon goes on straight across the hole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import fill, get_preset
from engine.completion import Completion

# A hole pixel is a ghost when no known pixel's colour is within this distance (RGB, 0..255) of its own.
GHOST_DISTANCE = 24.0


def stripes_and_dots(size: int = 160) -> np.ndarray:
    """Red and white vertical stripes on the left third, blue dots on white on the right third, white between."""
    image = np.full((size, size, 3), 255, np.uint8)
    x = np.arange(size)
    red = (x < size // 3) & ((x // 5) % 2 == 0)
    image[:, red] = [200, 20, 30]
    y, x = np.mgrid[:size, :size]
    dots = (x > 2 * size // 3) & (((y % 12) - 6) ** 2 + ((x % 12) - 6) ** 2 <= 9)
    image[dots] = [30, 40, 190]
    return image


def ghost_share(result: np.ndarray, hole: np.ndarray, known_colours: np.ndarray) -> float:
    """The share of the hole's pixels farther than GHOST_DISTANCE from every colour in known_colours (n,3)."""
    filled = result[hole].astype(np.float32)
    colours = np.unique(known_colours.reshape(-1, 3), axis=0).astype(np.float32)
    nearest = np.full(len(filled), np.inf, np.float32)
    for start in range(0, len(colours), 256):
        chunk = colours[start:start + 256]
        distance = np.sqrt(((filled[:, None, :] - chunk[None]) ** 2).sum(-1)).min(1)
        nearest = np.minimum(nearest, distance)
    return float((nearest > GHOST_DISTANCE).mean())


def complete(image: np.ndarray, hole: np.ndarray, seed: int = 0) -> np.ndarray:
    tensor = torch.from_numpy(image / 255.0).permute(2, 0, 1)[None].float()
    mask = torch.from_numpy(hole)[None, None].float()
    filled, _ = Completion(tensor, mask, 1 - mask).run(None, seed, lambda: None)
    return np.round(filled[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def test_a_hole_between_red_stripes_and_blue_dots_gets_no_colour_the_photo_lacks():
    image = stripes_and_dots()
    hole = np.zeros(image.shape[:2], bool)
    hole[40:120, 30:130] = True  # over stripes, the white between and dots
    result = complete(image, hole)
    assert np.array_equal(result[~hole], image[~hole])
    assert ghost_share(result, hole, image[~hole]) <= 0.01
    # Both sides are continued: stripes and dots, not the white between spread over the hole.
    assert (np.abs(result[hole].astype(int) - [200, 20, 30]).sum(1) < 60).mean() > 0.05
    assert (np.abs(result[hole].astype(int) - [30, 40, 190]).sum(1) < 60).mean() > 0.01


def test_each_hole_pixel_has_a_known_source_and_the_same_seed_gives_the_same_pixels():
    image = stripes_and_dots(96)
    hole = np.zeros(image.shape[:2], bool)
    hole[30:70, 20:80] = True
    tensor = torch.from_numpy(image / 255.0).permute(2, 0, 1)[None].float()
    mask = torch.from_numpy(hole)[None, None].float()
    filled, sources = Completion(tensor, mask, 1 - mask).run(None, 3, lambda: None)
    inside = sources[0] >= 0
    assert torch.equal(inside, mask[0, 0] > 0)
    assert not bool(mask[0, 0][sources[0][inside], sources[1][inside]].any())  # sources are known pixels
    again, _ = Completion(tensor, mask, 1 - mask).run(None, 3, lambda: None)
    assert torch.equal(filled, again)


def horizon(size: int, height: int, seed: int = 0) -> np.ndarray:
    """Textured sky above row `height`, textured ground from it down."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size, 3), np.float32)
    image[:height] = [110, 150, 210]
    image[height:] = [90, 110, 50]
    image += rng.normal(0, 12, (size, size, 1)) + rng.normal(0, 4, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def horizon_rows(result: np.ndarray, columns: range) -> np.ndarray:
    """Per column, the first row from which the pixels are mostly ground (nearer its colour than the sky's)."""
    sky, ground = np.array([110, 150, 210]), np.array([90, 110, 50])
    is_ground = np.abs(result - ground).sum(-1) < np.abs(result - sky).sum(-1)
    rows = []
    for x in columns:
        column = is_ground[:, x].astype(float)
        below = np.array([column[y:y + 6].mean() for y in range(len(column) - 6)])
        rows.append(int(np.argmax(below > 0.5)) + 3)  # the window's middle
    return np.array(rows)


@pytest.mark.parametrize("height, seed", [(100, 0), (128, 1), (150, 2), (170, 3)])
def test_a_horizon_crosses_a_128_px_hole_at_its_height_on_both_sides(height, seed):
    # Started from a smooth fill, the hole's middle pulled the horizon toward itself by up to 40 px.
    image = horizon(256, height)
    hole = np.zeros((256, 256), bool)
    hole[64:192, 64:192] = True
    result = complete(image, hole, seed)
    assert np.abs(horizon_rows(image, range(64, 192)) - height).max() <= 2  # the measure itself, on the photo
    rows = horizon_rows(result, range(64, 192))
    assert np.abs(rows - height).max() <= 2, rows


def default_fill_ghosts(image: np.ndarray, rows: slice, cols: slice) -> float:
    """The default fill's ghost share for a box hole; its known pixels must come back unchanged."""
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[rows, cols] = 255
    hole = mask > 0
    result = fill(image, mask, get_preset("default"))
    assert np.array_equal(result[~hole], image[~hole])
    return ghost_share(result, hole, image[~hole])


@pytest.mark.weights
def test_the_default_fill_of_a_hole_between_stripes_and_dots_gets_no_colour_the_photo_lacks():
    assert default_fill_ghosts(stripes_and_dots(), slice(40, 120), slice(30, 130)) <= 0.01


@pytest.mark.weights
def test_a_hole_between_a_flags_stripes_and_its_stars_gets_no_colour_the_photo_lacks():
    # A real photo: the flag behind the astronaut (scikit-image's sample), its red and white stripes below a hole
    # and its blue field of stars above it. The known colours are the crop's own.
    data = pytest.importorskip("skimage.data")
    image = np.ascontiguousarray(data.astronaut()[:256, :128])
    assert default_fill_ghosts(image, slice(70, 140), slice(10, 80)) <= 0.01
