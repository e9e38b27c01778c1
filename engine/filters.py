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
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (taps / sigma) ** 2)
    weights = (weights / weights.sum()).tolist()
    return _weighted_shifts(_weighted_shifts(x, weights, -1), weights, -2)


def _weighted_shifts(x: torch.Tensor, weights: list[float], dim: int) -> torch.Tensor:
    """x filtered along `dim` (-1 or -2) by the centred `weights`, the border replicated. Shifted slices, not a
    depthwise convolution: on a CPU that is 2-10x slower and sets up anew for each new size (docs/benchmarks.md)."""
    radius, size = len(weights) // 2, x.shape[dim]
    padded = F.pad(x, (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius), mode="replicate")
    out = padded.narrow(dim, 0, size) * weights[0]
    for offset in range(1, len(weights)):
        out.add_(padded.narrow(dim, offset, size), alpha=weights[offset])
    return out


def normalised_blur(x: torch.Tensor, weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """The Gaussian mean of `x` over the pixels `weight` (1,1,H,W) counts: a hole's colours never leak in."""
    return gaussian_blur(x * weight, sigma) / gaussian_blur(weight, sigma).clamp_min(1e-6)


def forward_differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dy): x[.., y, x+1] - x[.., y, x] and x[.., y+1, x] - x[.., y, x], zero in the last column / row."""
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return dx, dy
