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

from .reductions import total

CG_ITERATIONS = 60  # conjugate-gradient steps: the start is close already (the voted pixels)


def screen_for(wavelength: float) -> float:
    """The lam at which the anchor takes over for wavelengths longer than `wavelength` pixels."""
    return (2 * math.pi / wavelength) ** 2


def _neighbour_sum(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The sum of each pixel's four neighbours (none beyond the border), into `out` when given."""
    s = torch.zeros_like(x) if out is None else out.zero_()
    s[..., :, :-1] += x[..., :, 1:]
    s[..., :, 1:] += x[..., :, :-1]
    s[..., :-1, :] += x[..., 1:, :]
    s[..., 1:, :] += x[..., :-1, :]
    return s


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

    # In place, into buffers made once: a 512 px solve is over a thousand small element-wise passes, and fresh
    # tensors for each cost more than the arithmetic (most in a daemon's worker thread, whose allocator arena
    # hands large blocks back to the system).
    diagonal = (degree + lam) * hole
    masked, neighbours, step = torch.empty_like(start), torch.empty_like(start), torch.empty_like(start)

    def apply(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        _neighbour_sum(torch.mul(x, hole, out=masked), neighbours)
        return torch.mul(diagonal, x, out=out).sub_(neighbours.mul_(hole))

    x = start * hole
    residual = rhs - apply(x, step)
    direction = residual.clone()
    norm = total(residual * residual)
    for _ in range(iterations):
        apply(direction, step)
        alpha = norm / total(direction * step).clamp_min(1e-30)
        x.addcmul_(direction, alpha)
        residual.sub_(step.mul_(alpha))
        new_norm = total(residual * residual)
        direction.mul_(new_norm / norm.clamp_min(1e-30)).add_(residual)
        norm = new_norm
    return start * (1 - hole) + x * hole
