"""The fill's fine detail brought up to the level its surroundings have.

Copied patches are blended where they overlap, and a blend is softer than either copy; a fill can also copy from
the calmest part of a textured border. Where the fill's fine band is weaker than the border says it should be
(the border's own level carried into the hole by a harmonic fill of its logarithm), the band is amplified, by at
most `detail_gain`. It never weakens detail and never adds any where the fill has none to amplify.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .content import harmonic_fill
from .filters import gaussian_blur, normalised_blur
from .resample import bilinear

BAND_SIGMA = 1.5  # px: the fine band is what a Gaussian of this deviation removes
CELL = 4  # px: the grid the border's level is carried in on


def match_detail(image: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor, gain: float) -> torch.Tensor:
    """image (1,3,H,W) 0..1 with its hole (1,1,H,W) filled; usable (1,1,H,W): known pixels that are real."""
    if gain <= 1:
        return image
    low = gaussian_blur(image, BAND_SIGMA)
    band = image - low
    strength = band.abs().mean(1, keepdim=True)
    level = gaussian_blur(strength, 2 * BAND_SIGMA)
    around = normalised_blur(strength, usable, 2 * BAND_SIGMA)
    share = F.avg_pool2d(usable, CELL, CELL, ceil_mode=True)
    cells = F.avg_pool2d(around * usable, CELL, CELL, ceil_mode=True) / share.clamp_min(1e-6)
    whole = (share > 0.999).to(image.dtype)
    wanted = harmonic_fill(torch.log(cells + 1e-4) * whole, whole).exp()
    wanted = bilinear(wanted, image.shape[-2:])
    factor = gaussian_blur((wanted / level.clamp_min(1e-4)).clamp(1.0, gain), 2 * BAND_SIGMA)
    return (image + band * (factor - 1) * hole).clamp(0, 1)
