"""Random holes to train the content network on: what users select, roughly.

- centre squares (the paper's setting, and what a rectangle selection gives),
- free-form strokes (a brushed scratch, a wire, a branch),
- object-like blobs (a passer-by, a sign: one compact irregular region).

All masks are float tensors (1, S, S) with 1 = hole, drawn with a torch.Generator so a seed repeats them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

KINDS = ("square", "strokes", "blob")


def random_hole(size: int, generator: torch.Generator, kind: str | None = None) -> torch.Tensor:
    kind = kind or KINDS[int(torch.randint(len(KINDS), (1,), generator=generator))]
    maker = {"square": square_hole, "strokes": stroke_hole, "blob": blob_hole}[kind]
    hole = maker(size, generator)
    if hole.sum() == 0:  # never an empty hole: every sample must teach something
        hole = square_hole(size, generator)
    return hole


def centre_square(size: int, side: int | None = None) -> torch.Tensor:
    side = side or size // 2
    hole = torch.zeros(1, size, size)
    start = (size - side) // 2
    hole[:, start:start + side, start:start + side] = 1
    return hole


def square_hole(size: int, generator: torch.Generator) -> torch.Tensor:
    """Half the time the paper's centre square, else a rectangle of a quarter to a half of the side, anywhere."""
    if _uniform(generator) < 0.5:
        return centre_square(size)
    height, width = (int(size * _uniform(generator, 0.25, 0.5)) for _ in range(2))
    top, left = int(_uniform(generator, 0, size - height)), int(_uniform(generator, 0, size - width))
    hole = torch.zeros(1, size, size)
    hole[:, top:top + height, left:left + width] = 1
    return hole


def stroke_hole(size: int, generator: torch.Generator) -> torch.Tensor:
    """A few thick random walks, as a brush would leave."""
    hole = torch.zeros(1, size, size)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    for _ in range(1 + int(torch.randint(4, (1,), generator=generator))):
        y, x = _uniform(generator, 0, size), _uniform(generator, 0, size)
        radius = size * _uniform(generator, 0.03, 0.08)
        angle = _uniform(generator, 0, 2 * math.pi)
        for _ in range(4 + int(torch.randint(8, (1,), generator=generator))):
            angle += _uniform(generator, -1.0, 1.0)
            step = size * _uniform(generator, 0.05, 0.15)
            end_y = min(max(y + step * math.sin(angle), 0.0), size - 1.0)
            end_x = min(max(x + step * math.cos(angle), 0.0), size - 1.0)
            hole[0] = torch.maximum(hole[0], _segment(ys, xs, y, x, end_y, end_x, radius))
            y, x = end_y, end_x
    return hole


def blob_hole(size: int, generator: torch.Generator) -> torch.Tensor:
    """One compact irregular region: a disc whose radius smooth noise bends between 40% and 100%."""
    coarse = torch.rand(1, 1, 6, 6, generator=generator)
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0, 0].clamp(0, 1)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centre_y, centre_x = _uniform(generator, -0.4, 0.4), _uniform(generator, -0.4, 0.4)
    radius = _uniform(generator, 0.3, 0.6)
    distance = ((ys - centre_y) ** 2 + (xs - centre_x) ** 2).sqrt() / radius
    return (distance < 0.4 + 0.6 * field).float()[None]


def _segment(ys: torch.Tensor, xs: torch.Tensor, y0: float, x0: float, y1: float, x1: float,
             radius: float) -> torch.Tensor:
    """1 within `radius` of the segment (y0,x0)-(y1,x1)."""
    dy, dx = y1 - y0, x1 - x0
    length2 = max(dy * dy + dx * dx, 1e-6)
    t = (((ys - y0) * dy + (xs - x0) * dx) / length2).clamp(0, 1)
    distance2 = (ys - (y0 + t * dy)) ** 2 + (xs - (x0 + t * dx)) ** 2
    return (distance2 <= radius * radius).float()


def _uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))
