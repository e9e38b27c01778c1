"""Small image filters the synthesis shares: Gaussian blur (plain and normalised by a weight) and forward
differences."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N,C,H,W) blurred by a separable Gaussian of deviation `sigma` px (3 sigma reach, borders replicated)."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"),
                 kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"),
                    kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def normalised_blur(x: torch.Tensor, weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """The Gaussian mean of `x` over the pixels `weight` (1,1,H,W) counts: a hole's colours never leak in."""
    return gaussian_blur(x * weight, sigma) / gaussian_blur(weight, sigma).clamp_min(1e-6)


def forward_differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dy): x[.., y, x+1] - x[.., y, x] and x[.., y+1, x] - x[.., y, x], zero in the last column / row."""
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return dx, dy
