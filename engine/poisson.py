"""Blending in the gradient domain: the screened Poisson equation solved over a hole (Pérez et al. 2003 for the
seamless part; Darabi et al.'s Image Melding for voting gradients, then solving).

The hole's pixels X minimise  sum |grad X - g|^2 + lam |X - anchor|^2  with every known pixel fixed: the fill
takes its fine detail from the gradients g (voted from real patches, so seams between patches carry no false
edges) and its coarse shading from the anchor; lam sets where one hands over to the other (wavelengths longer
than about 2 pi / sqrt(lam) pixels follow the anchor).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

CG_ITERATIONS = 60  # conjugate-gradient steps: the start is close already (the voted pixels)


def screen_for(wavelength: float) -> float:
    """The lam at which the anchor takes over for wavelengths longer than `wavelength` pixels."""
    return (2 * math.pi / wavelength) ** 2


def _neighbour_sum(x: torch.Tensor) -> torch.Tensor:
    s = F.pad(x[..., :, 1:], (0, 1)) + F.pad(x[..., :, :-1], (1, 0))
    return s + F.pad(x[..., 1:, :], (0, 0, 0, 1)) + F.pad(x[..., :-1, :], (0, 0, 1, 0))


def screened_poisson(start: torch.Tensor, hole: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor,
                     anchor: torch.Tensor, lam: float, iterations: int = CG_ITERATIONS) -> torch.Tensor:
    """(N,C,H,W): `start` with its hole (N,1,H,W, {0,1}) solved for; dx, dy the wanted forward differences (as
    engine.filters.forward_differences), anchor the image the coarse shading comes from. Pixels outside the
    hole come back as they are in `start`; the image border has no neighbours beyond it (Neumann)."""
    hole = hole.expand_as(start)
    ones = torch.ones_like(start[:, :1])
    degree = _neighbour_sum(ones)
    dx = dx * F.pad(ones[..., :, 1:], (0, 1))  # no difference across the right or bottom border
    dy = dy * F.pad(ones[..., 1:, :], (0, 0, 0, 1))
    divergence = dx - F.pad(dx[..., :, :-1], (1, 0)) + dy - F.pad(dy[..., :-1, :], (0, 0, 1, 0))
    rhs = (lam * anchor - divergence + _neighbour_sum(start * (1 - hole))) * hole

    def apply(x: torch.Tensor) -> torch.Tensor:
        return ((degree + lam) * x - _neighbour_sum(x * hole)) * hole

    x = start * hole
    residual = rhs - apply(x)
    direction = residual.clone()
    norm = (residual * residual).sum()
    for _ in range(iterations):
        step = apply(direction)
        alpha = norm / (direction * step).sum().clamp_min(1e-30)
        x = x + alpha * direction
        residual = residual - alpha * step
        new_norm = (residual * residual).sum()
        direction = residual + new_norm / norm.clamp_min(1e-30) * direction
        norm = new_norm
    return start * (1 - hole) + x * hole
