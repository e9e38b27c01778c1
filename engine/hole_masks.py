"""Holes to train the content network on and to evaluate fills with: what users select, roughly.

- centre squares (the paper's setting, and what a rectangle selection gives),
- free-form strokes (a brushed scratch, a wire, a branch): one generator, `free_form_hole`, for training and
  evaluation alike,
- object-like blobs (a passer-by, a sign: one compact irregular region): `blob_hole` for training,
  `object_hole` (a lasso around a few overlapping ellipses) for evaluation.

Evaluation draws bool numpy masks from a numpy Generator; training draws float tensors (1, S, S) with 1 = hole
from a torch.Generator. Either way a seed repeats them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from PIL import Image, ImageDraw
from scipy.ndimage import distance_transform_edt

KINDS = ("square", "strokes", "blob")


def random_hole(size: int, generator: torch.Generator, kind: str | None = None) -> torch.Tensor:
    kind = kind or KINDS[int(torch.randint(len(KINDS), (1,), generator=generator))]
    maker = {"square": square_hole, "strokes": stroke_hole, "blob": blob_hole}[kind]
    hole = maker(size, generator)
    if hole.sum() == 0:  # never an empty hole: every sample must teach something
        hole = square_hole(size, generator)
    return hole


def centre_square(size: int, side: int | None = None) -> torch.Tensor:
    return torch.from_numpy(centre_hole(size, side or size // 2)).float()[None]


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
    """Free-form strokes, as evaluation draws them, from a seed the torch generator gives."""
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
    return torch.from_numpy(free_form_hole(size, rng)).float()[None]


def blob_hole(size: int, generator: torch.Generator) -> torch.Tensor:
    """One compact irregular region: a disc whose radius smooth noise bends between 40% and 100%."""
    coarse = torch.rand(1, 1, 6, 6, generator=generator)
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0, 0].clamp(0, 1)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centre_y, centre_x = _uniform(generator, -0.4, 0.4), _uniform(generator, -0.4, 0.4)
    radius = _uniform(generator, 0.3, 0.6)
    distance = ((ys - centre_y) ** 2 + (xs - centre_x) ** 2).sqrt() / radius
    return (distance < 0.4 + 0.6 * field).float()[None]


def _uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def centre_hole(size: int, side: int) -> np.ndarray:
    """bool size x size, True on the side x side square in the middle (top-left rounding when odd)."""
    hole = np.zeros((size, size), bool)
    start = (size - side) // 2
    hole[start:start + side, start:start + side] = True
    return hole


def free_form_hole(size: int, rng: np.random.Generator, coverage: tuple[float, float] = (0.10, 0.30)) -> np.ndarray:
    """Brush strokes (thick random polylines with round joints) drawn segment by segment until they cover a random
    fraction of the square within `coverage`; drawn again in the rare case the last segment overshoots."""
    low, high = coverage
    for _ in range(100):
        target = rng.uniform(low, high)
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        covered = 0.0
        while covered < target:
            width = max(3, int(size * rng.uniform(0.03, 0.08)))
            x, y = rng.uniform(0, size), rng.uniform(0, size)
            angle = rng.uniform(0, 2 * math.pi)
            for _ in range(int(rng.integers(4, 12))):
                angle += rng.uniform(-1.0, 1.0)
                step = size * rng.uniform(0.05, 0.15)
                end_x = min(max(x + step * math.cos(angle), 0.0), size - 1.0)
                end_y = min(max(y + step * math.sin(angle), 0.0), size - 1.0)
                draw.line([(x, y), (end_x, end_y)], fill=255, width=width)
                radius = width / 2
                draw.ellipse([end_x - radius, end_y - radius, end_x + radius, end_y + radius], fill=255)
                x, y = end_x, end_y
                covered = float((np.asarray(canvas) > 0).mean())
                if covered >= target:
                    break
        if low <= covered <= high:
            return np.asarray(canvas) > 0
    raise RuntimeError(f"no free-form hole within {coverage} after 100 draws")  # pragma: no cover - never seen


def object_hole(size: int, rng: np.random.Generator, coverage: tuple[float, float], margin: int) -> np.ndarray:
    """A selection of an object, as drawn with a lasso: a main ellipse 1.4-2.5 times as long as wide, upright or
    lying, tilted up to 20 degrees, 1-3 smaller ones overlapping it along its length (a head, an arm, a bag),
    the union grown by 3-8 px (a lasso's slack), scaled to a random fraction of the square within `coverage`,
    and placed anywhere at least `margin` px from the border (known context on every side)."""
    low, high = coverage
    ys, xs = np.mgrid[:size, :size] - (size - 1) / 2
    for _ in range(100):
        target = rng.uniform(low, high)
        length = rng.uniform(1.4, 2.5)
        # (along, across, half-length, half-width, tilt) in units of the main ellipse's half-width, upright.
        parts = [(0.0, 0.0, length, 1.0, rng.uniform(-0.35, 0.35))]
        for _ in range(int(rng.integers(1, 4))):
            parts.append((rng.uniform(-0.8, 0.8) * length, rng.uniform(-0.7, 0.7), rng.uniform(0.4, 0.9) * length,
                          rng.uniform(0.4, 0.9), rng.uniform(-0.8, 0.8)))
        lying = rng.random() < 0.5
        slack = int(rng.integers(3, 9))
        unit = size * math.sqrt(target / (math.pi * length)) / 1.3  # a first guess, corrected below
        for _ in range(4):
            hole = _ellipses(ys, xs, parts, unit, lying)
            hole = distance_transform_edt(~hole) <= slack
            covered = float(hole.mean())
            if covered == 0:
                break
            unit *= math.sqrt(target / covered)
        rows, cols = np.nonzero(hole)
        if not rows.size or not low <= covered <= high:
            continue
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        if rows.min() == 0 or cols.min() == 0 or max(height, width) > size - 2 * margin:
            continue  # clipped by the square, or too long to leave the margin
        top = int(rng.integers(margin, size - margin - height + 1))
        left = int(rng.integers(margin, size - margin - width + 1))
        placed = np.zeros((size, size), bool)
        placed[top:top + height, left:left + width] = hole[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        return placed
    raise RuntimeError(f"no object hole within {coverage} after 100 draws")  # pragma: no cover - never seen


def _ellipses(ys: np.ndarray, xs: np.ndarray, parts: list[tuple[float, ...]], unit: float, lying: bool) -> np.ndarray:
    """The union of the ellipses `parts` (see object_hole), `unit` px to their unit, on the grid ys, xs centred on
    the square."""
    if lying:
        ys, xs = xs, ys
    union = np.zeros(ys.shape, bool)
    for along, across, half_length, half_width, tilt in parts:
        dy, dx = ys - along * unit, xs - across * unit
        cos, sin = math.cos(tilt), math.sin(tilt)
        u, v = dy * cos + dx * sin, -dy * sin + dx * cos
        union |= (u / (half_length * unit)) ** 2 + (v / (half_width * unit)) ** 2 <= 1
    return union
