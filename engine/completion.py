"""Hole completion that commits to real pixels: Wexler, Shechtman and Irani's (2007) expectation-maximisation over
a coarse-to-fine pyramid, with PatchMatch (Barnes et al. 2009) nearest-neighbour fields (engine/completion_search.py).

Every 7x7 patch that overlaps the hole keeps one source patch of known pixels; the hole is rebuilt from the
sources that cover it, weighted by how well each matched, and searched again. Patches are compared on colour and
its gradients, so a flat source does not win a textured place. The pyramid starts where the hole is a few pixels
across, and each finer level inherits the field doubled, so copies stay coherent, and a vote of coherent copies is
the copy itself, not a mean of strangers. A level's last vote reads the finer level's own pixels (Wexler et al.,
section 3.2): no upsampling blur reaches the fill. The content prediction fills the coarsest hole, and so steers
which sources are chosen there; its own pixels never reach the fill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .completion_search import minimise, vote
from .content import push_pull_fill
from .filters import gaussian_blur

RADIUS = 3  # 7x7 patches
CHANNELS = 9  # colour, its x gradient, its y gradient
# The hole's pixels (an estimate) count this much against the known ones, and are compared with the sources
# blurred by SOFT px: compared with sharp sources, a vote's soft estimate chose the smoothest places in the photo
# and the fill came out as flat copies of them (docs/quality.md).
HOLE_WEIGHT = 0.3
SOFT = 1.0
# The normalised patch distance (mean squared difference per channel, colours 0..1) at which a vote weighs 1/e.
SIMILARITY_SCALE = 0.04
COARSEST_SIDE = 16  # px: the pyramid halves while the shorter side stays at least this
PASSES = 7  # at most, per round: coarse levels get more (1 + their depth)
# The vote seeks the mode of its colours in MODES rounds of mean shift of this deviation (colours 0..1).
MODES = 3
MODE_SPREAD = 0.1


@dataclass
class Level:
    """One pyramid level: colours (H,W,3) float32 0..1 (the hole's as estimated), hole and usable (H,W) bool;
    the queries (n,2) are the pixels whose patch overlaps the hole, in raster order."""

    colours: np.ndarray
    hole: np.ndarray
    usable: np.ndarray

    def __post_init__(self) -> None:
        self.usable = self.usable & ~self.hole
        near = F.max_pool2d(_tensor(self.hole.astype(np.float32)), 2 * RADIUS + 1, 1, RADIUS)[0, 0].numpy() > 0
        self.queries = np.argwhere(near).astype(np.int64)
        self.index = np.full(self.hole.shape, -1, dtype=np.int64)
        self.index[self.queries[:, 0], self.queries[:, 1]] = np.arange(len(self.queries))

    def coarser(self) -> Level:
        """Half the size: known colours averaged; a pixel is known or usable only where all four were."""
        known = _tensor((~self.hole).astype(np.float32))
        weight = F.avg_pool2d(known, 2, ceil_mode=True)
        colours = F.avg_pool2d(_tensor(self.colours) * known, 2, ceil_mode=True) / weight.clamp_min(1e-6)
        usable = F.avg_pool2d(_tensor(self.usable.astype(np.float32)), 2, ceil_mode=True)
        return Level(_array(colours), weight[0, 0].numpy() < 1 - 1e-6, usable[0, 0].numpy() > 1 - 1e-6)


def _tensor(array: np.ndarray) -> torch.Tensor:
    """(H,W) or (H,W,C) numpy -> (1,C,H,W) torch."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]


def _array(t: torch.Tensor) -> np.ndarray:
    """(1,C,H,W) torch -> (H,W,C) float32 numpy."""
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy(), dtype=np.float32)


def _features(colours: np.ndarray) -> np.ndarray:
    """(H,W,3) -> (H,W,9): colour and its forward differences (0 past the last row and column)."""
    gx, gy = np.zeros_like(colours), np.zeros_like(colours)
    gx[:, :-1] = colours[:, 1:] - colours[:, :-1]
    gy[:-1] = colours[1:] - colours[:-1]
    return np.ascontiguousarray(np.concatenate([colours, gx, gy], 2), dtype=np.float32)


def _similarity(cost: np.ndarray) -> np.ndarray:
    normalised = cost / ((2 * RADIUS + 1) ** 2 * CHANNELS)
    return np.maximum(np.exp(-(normalised / SIMILARITY_SCALE) ** 3), 1e-30)


def _next_seed(seed: int) -> np.uint64:
    return np.uint64((seed * 6364136223846793005 + 1442695040888963407) % 2**64)


class Completion:
    """The pyramid of one crop. image (1,3,H,W) 0..1; hole (1,1,H,W) {0,1}; usable (1,1,H,W) pixels that may be
    copied (known, not excluded)."""

    def __init__(self, image: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor) -> None:
        self.device, self.dtype = image.device, image.dtype
        finest = Level(_array(image.detach().float().cpu()), hole[0, 0].cpu().numpy() > 0,
                       usable[0, 0].cpu().numpy() > 0)
        self.levels = [finest]
        side = (2 * RADIUS + 1) ** 2
        while min(self.levels[0].hole.shape) // 2 >= COARSEST_SIDE:
            coarser = self.levels[0].coarser()
            if int(coarser.usable.sum()) < side or not coarser.hole.any():
                break  # too little left to copy from, or nothing to fill
            self.levels.insert(0, coarser)

    def plan(self) -> list[tuple[tuple[int, int], int]]:
        """(size, rounds) per level, coarse to fine: coarse levels, cheap, get the most rounds."""
        last = len(self.levels) - 1
        return [((level.hole.shape[0], level.hole.shape[1]), 1 + 2 * (last - number))
                for number, level in enumerate(self.levels)]

    def run(self, start: torch.Tensor | None, seed: int, check_cancel: Callable[[], None],
            progress: Callable[[int, int, int], None] = lambda level, done, total: None
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The filled image (1,3,H,W) and each hole pixel's source (2,H,W), -1 elsewhere. start (1,3,H,W): what
        the coarsest hole starts as (the content prediction); None spreads the known colours inward."""
        coarsest = self.levels[0]
        size = coarsest.hole.shape
        if start is None:
            first = _array(push_pull_fill(_tensor(coarsest.colours), _tensor((~coarsest.hole).astype(np.float32))))
        else:
            first = _array(F.interpolate(start.detach().float().cpu(), size=size, mode="area"))
        coarsest.colours[coarsest.hole] = first[coarsest.hole]
        sy = sx = np.empty(0, dtype=np.int64)
        stream = _next_seed(seed)
        for number, ((_, rounds), level) in enumerate(zip(self.plan(), self.levels, strict=True)):
            sy, sx = self._start_field(number, sy, sx)
            qy, qx = level.queries[:, 0].copy(), level.queries[:, 1].copy()
            cost = np.empty(len(qy), dtype=np.float64)
            passes = min(PASSES, rounds // 2 + 1)
            for done in range(rounds):
                check_cancel()
                features = _features(level.colours)
                soft = _features(_array(gaussian_blur(_tensor(level.colours), SOFT)))
                stream = _next_seed(int(stream))
                minimise(features, features, soft, level.hole, level.usable, qy, qx, level.index, sy, sx, cost,
                         passes, RADIUS, HOLE_WEIGHT, stream)
                weight = _similarity(cost)
                finer = self.levels[number + 1] if number + 1 < len(self.levels) else None
                if done == rounds - 1 and finer is not None:
                    # Fine pixels no coarse patch covers keep the coarse estimate.
                    up = np.repeat(np.repeat(level.colours, 2, 0), 2, 1)[:finer.hole.shape[0], :finer.hole.shape[1]]
                    finer.colours[finer.hole] = up[finer.hole]
                    finer.colours = vote(qy, qx, sy, sx, weight, RADIUS, 2, finer.colours, finer.usable,
                                         finer.hole, MODES, MODE_SPREAD).astype(np.float32)
                else:
                    level.colours = vote(qy, qx, sy, sx, weight, RADIUS, 1, level.colours, level.usable,
                                         level.hole, MODES, MODE_SPREAD).astype(np.float32)
                progress(number, done + 1, rounds)
        return self._result(sy, sx)

    def _start_field(self, number: int, sy: np.ndarray, sx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level `number`'s field: the coarser level's doubled (each pixel at its place within its coarse pixel);
        a query without a coarse one, and every query of the first level, starts at its own place, which is in
        or next to the hole, so the first search replaces it."""
        level = self.levels[number]
        qy, qx = level.queries[:, 0], level.queries[:, 1]
        out_y, out_x = qy.copy(), qx.copy()
        if number > 0:
            coarse = self.levels[number - 1]
            height, width = coarse.hole.shape
            j = coarse.index[np.minimum(qy // 2, height - 1), np.minimum(qx // 2, width - 1)]
            has = j >= 0
            out_y[has] = 2 * sy[j[has]] + qy[has] % 2
            out_x[has] = 2 * sx[j[has]] + qx[has] % 2
        height, width = level.hole.shape
        return np.clip(out_y, 0, height - 1), np.clip(out_x, 0, width - 1)

    def _result(self, sy: np.ndarray, sx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        finest = self.levels[-1]
        image = _tensor(finest.colours).to(self.device, self.dtype)
        sources = torch.full((2, *finest.hole.shape), -1, dtype=torch.long)
        qy, qx = finest.queries[:, 0], finest.queries[:, 1]
        inside = finest.hole[qy, qx]
        sources[0, qy[inside], qx[inside]] = torch.from_numpy(sy[inside])
        sources[1, qy[inside], qx[inside]] = torch.from_numpy(sx[inside])
        return image, sources.to(self.device)
