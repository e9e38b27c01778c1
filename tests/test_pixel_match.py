"""The pixel-precise PatchMatch (engine/pixel_match.py): the coarse-to-fine field it starts from."""

from __future__ import annotations

import numba
import pytest
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


def test_the_search_gives_one_result_on_any_number_of_threads():
    """The random shifts are hashed from the seed and each pass reads the field as it found it, so the threads'
    order cannot change a fill (a re-run or a resumed batch gives the same pixels on any machine)."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one CPU: nothing to compare")
    size = 64
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    hole = torch.zeros(1, 1, size, size)
    hole[..., 20:44, 24:40] = 1
    start = image * (1 - hole) + 0.5 * hole
    threads = numba.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            numba.set_num_threads(count)
            pixels = _match(start, hole, seed=3)
            results.append((pixels.run(start, pixels.own_places(), 2), pixels.sources))
    finally:
        numba.set_num_threads(threads)
    assert len(results) == 2
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    other = _match(start, hole, seed=4)
    assert not torch.equal(other.run(start, other.own_places(), 2), results[0][0])  # the seed does count


def test_stripes_two_pixels_wide_are_continued_in_phase_across_a_scratch():
    """Every pixel of the patch counts: read at every other pixel, 2 px stripes alias and a shift by one stripe
    looks as good as none (measured: 40 levels off, against 5)."""
    size = 128
    rows = (torch.arange(size) // 2 % 2).float() * 0.7 + 0.15  # horizontal stripes 2 px high
    image = rows[None, None, :, None].expand(1, 3, size, size).clone()
    hole = torch.zeros(1, 1, size, size)
    hole[..., 20:108, 60:70] = 1
    start = image * (1 - hole) + 0.5 * hole
    pixels = _match(start, hole)
    filled = pixels.run(start, pixels.own_places(), 3)
    inside = hole[0, 0] > 0
    shifts = pixels.sources[0][inside] - inside.nonzero()[:, 0]
    assert bool((shifts % 4 == 0).all())  # every source row in phase
    assert float((filled - image)[0][:, inside].abs().mean()) < 8 / 255
