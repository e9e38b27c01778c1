"""Grain: a smooth content prior (the network, the harmonic fill) leaves a hole cleaner than the photo around it,
and a clean patch in a grainy sky shows as a smudge. The missing grain is copied in from the known pixels the
synthesis matched, at the strength the photo's own noise has.

The noise level comes from the Haar diagonal band, whose median absolute value over 0.6745 is the robust
deviation estimate of Donoho and Johnstone: smooth areas and straight edges hardly reach that band. Fine texture
(foliage, gravel) does, so the band is read at two octaves: white grain halves its deviation one octave down,
while a photo's texture keeps about as much there, and only the part that halves counts as grain. A photo
downscaled until its noise averaged away gets none added, and keeps the pixel scores of docs/quality.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .patches import Match
from .voting import vote_patches

MAD_TO_SIGMA = 0.6745
GRAIN_CLIP = 2.5  # deviations: Gaussian grain lies within it 99 % of the time


def band_deviation(image: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """(1,C,1,1): the robust deviation of the Haar diagonal band over the 2x2 blocks lying wholly in `where`
    (zero when none does). image (1,C,H,W); where (1,1,H,W) {0,1}."""
    height, width = image.shape[-2] // 2 * 2, image.shape[-1] // 2 * 2
    x = image[..., :height, :width]
    diagonal = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    inside = F.avg_pool2d(where[..., :height, :width], 2)[0, 0] > 0.999
    if not inside.any():
        return torch.zeros(1, image.shape[1], 1, 1, dtype=image.dtype, device=image.device)
    values = diagonal[0][:, inside].abs()  # (C, blocks)
    return (values.median(dim=1).values / MAD_TO_SIGMA).view(1, -1, 1, 1)


def noise_level(image: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """(1,C,1,1): the deviation of white grain per channel in `where`. With the band deviation d0 at full size and
    d1 one octave down, grain n and texture t: d0^2 = n^2 + t^2 and d1^2 = n^2/4 + t^2, so n^2 = 4/3 (d0^2 - d1^2)."""
    fine = band_deviation(image, where)
    where_half = (F.avg_pool2d(where, 2) > 0.999).to(where.dtype)
    coarse = band_deviation(F.avg_pool2d(image, 2), where_half)
    return (4 / 3 * (fine ** 2 - coarse ** 2)).clamp_min(0).sqrt()


def fine_band(image: torch.Tensor) -> torch.Tensor:
    """What a 3x3 box blur removes: the grain and the finest detail."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    return image - F.avg_pool2d(padded, 3, 1)


def missing_grain(result: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    """(1,C,1,1): the grain deviation the hole of `result` lacks against the `usable` known pixels; zero for a
    photo without grain, which then needs no nearest-neighbour field to copy from."""
    wanted = noise_level(result, usable)
    present = noise_level(result, hole)
    return (wanted ** 2 - present ** 2).clamp_min(0).sqrt()


def add_grain(result: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor, match: Match, stride: int,
              missing: torch.Tensor | None = None) -> torch.Tensor:
    """`result` (1,C,H,W) 0..1 with grain added in `hole` up to the noise level of the `usable` known pixels.

    match: which known cell each hole cell looks like (the synthesis's final nearest-neighbour field, cells of
    `stride` pixels); the grain is copied from there, so it follows the local texture's own. missing: what
    missing_grain says, when the caller has it already."""
    missing = missing_grain(result, hole, usable) if missing is None else missing
    if float(missing.max()) == 0.0:
        return result
    copied, weight = vote_patches(fine_band(result), usable, match, stride, stride)
    region = hole * (weight > 0).to(hole.dtype)
    strength = band_deviation(copied, region)
    # Edges in the copied band lie far out in its tails: clipped, only the grain is left to scale.
    copied = torch.maximum(torch.minimum(copied, GRAIN_CLIP * strength), -GRAIN_CLIP * strength)
    grain = copied * torch.where(strength > 0, missing / strength.clamp_min(1e-8), torch.zeros_like(strength))
    return (result + grain * region).clamp(0, 1)
