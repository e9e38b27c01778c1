"""Native-resolution detail for crops synthesised below their own resolution.

A crop larger than the working size is synthesised at the working size, then upsampled. Upsampling loses the
band of frequencies the working size cannot hold, so we bring that band back from the photo's own known pixels,
guided by the synthesis itself: the final nearest-neighbour field (for a hole copied by pixel patches alone,
their own field) says which known patch each hole cell looks like, and each hole cell receives the high-frequency
band of that known patch at native resolution, blended with overlapping Hann windows (patch voting) so that no
cell edges show.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .patches import Match
from .voting import vote_patches


def high_frequencies(native: torch.Tensor, working_size: tuple[int, int]) -> torch.Tensor:
    """The part of `native` (1,C,h,w) lost by a round trip through `working_size`."""
    low = F.interpolate(F.interpolate(native, size=working_size, mode="area"), size=native.shape[-2:],
                        mode="bicubic", align_corners=False)
    return native - low


def transfer_detail(native: torch.Tensor, known: torch.Tensor, working_size: tuple[int, int], match: Match,
                    stride: int) -> torch.Tensor:
    """Detail (1,C,h,w) for the hole; zero where no matched window lands.

    native: the crop at native resolution (known pixels real); known: (1,1,h,w) 1 where pixels may be copied.
    """
    height, width = native.shape[-2:]
    band, _ = vote_patches(high_frequencies(native, working_size), known, match,
                           stride * height / working_size[0], stride * width / working_size[1])
    return band


def pixel_field_match(current: torch.Tensor, hole: torch.Tensor, sources: torch.Tensor) -> Match:
    """The pixel PatchMatch's field (2,H,W) as a Match of one-pixel cells: each hole pixel and its source."""
    inside = sources[0] >= 0
    query = inside.nonzero()
    return Match(current, hole * inside, sources[:, inside].T.contiguous(), query)
