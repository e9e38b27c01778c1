"""Grain: read from the photo's white noise, not its texture, and put back into a fill left too clean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.grain import add_grain, noise_level
from engine.patches import Match
from tests.support.images import noisy_photo

DATA = Path(__file__).parent / "data"


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


def test_the_noise_level_reads_white_grain_and_not_a_photos_texture():
    everywhere = torch.ones(1, 1, 128, 128)
    grainy = as_tensor(noisy_photo(128, 128, seed=1))  # gradients plus grain of deviation 18 levels
    level = noise_level(grainy, everywhere) * 255
    assert ((level > 15) & (level < 21)).all(), level
    # A photo of bricks: mortar lines and rough stone everywhere, and no grain to speak of.
    bricks = torch.from_numpy(np.array(Image.open(DATA / "brick.png"), np.float32))[None, None] / 255
    assert float(noise_level(bricks, everywhere)) * 255 < 1.5
    rng = np.random.default_rng(2)
    grained = bricks + torch.from_numpy(rng.normal(0, 10 / 255, bricks.shape)).float()
    assert 8.5 < float(noise_level(grained, everywhere)) * 255 < 11.5


def identity_match(hole: torch.Tensor, stride: int, shift: int) -> Match:
    """Each hole cell matched to the cell `shift` cells to its left (known in the tests below)."""
    cells = torch.nn.functional.max_pool2d(hole, stride, stride)[0, 0] > 0
    query = cells.nonzero()
    source = query.clone()
    source[:, 1] -= shift
    return Match(target=torch.zeros(1), covered=torch.zeros(1), source=source, query=query)


def test_a_clean_fill_in_a_grainy_photo_gets_the_photos_grain_and_known_pixels_stay():
    photo = as_tensor(noisy_photo(96, 128, seed=5))
    hole = torch.zeros(1, 1, 96, 128)
    hole[..., 32:64, 72:104] = 1
    smooth = torch.nn.functional.avg_pool2d(photo, 9, 1, 4, count_include_pad=False)
    clean_fill = photo * (1 - hole) + smooth * hole
    match = identity_match(hole, 4, shift=12)
    grained = add_grain(clean_fill, hole, 1 - hole, match, 4)
    assert torch.equal(grained * (1 - hole), clean_fill * (1 - hole))
    wanted = noise_level(photo, 1 - hole)
    before, after = noise_level(clean_fill, hole), noise_level(grained, hole)
    assert float((before / wanted).max()) < 0.3
    assert float((after / wanted).min()) > 0.7 and float((after / wanted).max()) < 1.3


def test_a_photo_without_grain_gets_nothing_added():
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    clean = torch.stack([0.2 + 0.5 * x, 0.3 + 0.4 * y, 0.5 + 0.2 * x * y])[None]
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 20:44, 20:44] = 1
    match = identity_match(hole, 4, shift=5)
    assert torch.equal(add_grain(clean, hole, 1 - hole, match, 4), clean)
