"""The pixel-precise PatchMatch (engine/pixel_match.py): the coarse-to-fine field it starts from."""

from __future__ import annotations

import torch

from engine.pixel_match import RADIUS, PixelMatch


def _match(image: torch.Tensor, hole: torch.Tensor, seed: int = 0) -> PixelMatch:
    return PixelMatch(image, hole, 1 - hole, image, torch.Generator().manual_seed(seed), lambda: None)


def test_a_pixel_takes_its_coarser_pixels_source_doubled_at_its_own_place_within_it():
    size = 32
    hole = torch.zeros(1, 1, size, size)
    hole[..., 12:20, 12:20] = 1
    pixels = _match(torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)), hole)
    coarser = torch.stack(torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij"))  # identity at 16 px
    coarser = coarser.flip(1)  # each coarse pixel copies its mirror image's row: a field that is not the identity
    sources = pixels.inherited(coarser)
    y, x = pixels.queries[:, 0], pixels.queries[:, 1]
    want_y = (2 * coarser[0, y // 2, x // 2] + y % 2).clamp(RADIUS, size - 1 - RADIUS)
    want_x = (2 * coarser[1, y // 2, x // 2] + x % 2).clamp(RADIUS, size - 1 - RADIUS)
    assert torch.equal(sources[:, 0], want_y) and torch.equal(sources[:, 1], want_x)

    assert pixels.inherited(coarser[:, :15, :15]) is None  # not the scale half this size: nothing to inherit
    coarser[:, 7, 7] = -1  # a pixel the coarser scale had no source for: nothing to inherit
    assert pixels.inherited(coarser) is None


def test_dense_scratches_are_filled_from_partial_patches_beside_them():
    """Scratches every 4 px leave no whole patch anywhere: sources must overlap the hole (and their hole pixels
    must not be copied), as PatchMatch's inpainting allows. Horizontal stripes then continue across each scratch."""
    size = 48
    rows = (torch.arange(size) // 3 % 2).float()  # stripes 3 px high
    image = rows[None, None, :, None].expand(1, 3, size, size).clone()
    hole = torch.zeros(1, 1, size, size)
    hole[..., 2::4] = 1  # one-pixel vertical scratches
    start = image * (1 - hole) + 0.5 * hole  # the scratches grey
    pixels = _match(start, hole)
    assert bool(pixels.valid.any())
    filled = pixels.run(start, pixels.own_places(), 3)
    inside = hole.expand_as(image) > 0
    assert float((filled - image)[inside].abs().mean()) < 0.1  # grey would be 0.5 off
    assert torch.equal(filled[~inside], image[~inside])
