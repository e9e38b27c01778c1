"""Hole completion that commits to real pixels: Wexler, Shechtman and Irani's (2007) expectation-maximisation over
a coarse-to-fine pyramid, with PatchMatch (Barnes et al. 2009) nearest-neighbour fields (engine/completion_search.py).

The coarsest level (64-127 px) is filled in order of priority (Criminisi, Perez and Toyama 2004: exemplar_fill), which
carries the edges that reach the hole straight across it; the content prediction decides where the border leaves
the choice open, and its own pixels never reach the fill. Then, at every level, every 7x7 patch that overlaps the
hole keeps one source patch of known pixels, compared on colour and its gradients (a flat source does not win a
textured place), and the hole is rebuilt from the sources that cover it by seeking the mode of their colours, not
their mean: where two structures meet a pixel takes one of them, never their mixture. Each finer level inherits
the field doubled, so copies stay coherent, and a level's last vote reads the finer level's own pixels (Wexler et
al., section 3.2): no upsampling blur reaches the fill.
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
# px: the pyramid halves while its shorter side stays at least this. The coarsest level is filled in order of
# priority (exemplar_fill), which carries edges straight across the hole; started coarser, from a smooth fill,
# the expectation-maximisation bent a horizon by up to 40 px toward the hole's middle (docs/quality.md).
COARSEST_SIDE = 64
PASSES = 7  # at most, per round: coarse levels get more (1 + their depth)
# The vote seeks the mode of its colours in MODES rounds of mean shift of this deviation (colours 0..1): narrow
# enough that a grainy photo's grain survives the vote (docs/quality.md).
MODES = 3
MODE_SPREAD = 0.05


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
        """The filled image (1,3,H,W) and each hole pixel's source (2,H,W), -1 elsewhere. start (1,3,H,W) or None:
        the content prediction, which steers the coarsest level's choice of patches where the border leaves it
        open."""
        coarsest = self.levels[0]
        guide = None
        if start is not None:
            guide = _array(F.interpolate(start.detach().float().cpu(), size=coarsest.hole.shape, mode="area"))
        coarsest.colours = exemplar_fill(coarsest.colours, coarsest.hole, coarsest.usable, guide)
        sy = sx = np.empty(0, dtype=np.int64)
        stream = _next_seed(seed)
        for number, ((_, rounds), level) in enumerate(zip(self.plan(), self.levels, strict=True)):
            sy, sx = self._start_field(number, sy, sx)
            qy, qx = level.queries[:, 0].copy(), level.queries[:, 1].copy()
            cost = np.empty(len(qy), dtype=np.float64)
            passes = min(PASSES, rounds // 2 + 1)
            finer = self.levels[number + 1] if number + 1 < len(self.levels) else None
            for done in range(rounds):
                check_cancel()
                features = _features(level.colours)
                soft = _features(_array(gaussian_blur(_tensor(level.colours), SOFT)))
                stream = _next_seed(int(stream))
                minimise(features, soft, level.hole, level.usable, qy, qx, level.index, sy, sx, cost,
                         passes, RADIUS, HOLE_WEIGHT, stream)
                weight = _similarity(cost)
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


def exemplar_fill(colours: np.ndarray, hole: np.ndarray, usable: np.ndarray, guide: np.ndarray | None,
                  radius: int = RADIUS, guide_weight: float = 0.1) -> np.ndarray:
    """Criminisi, Perez and Toyama's (2004) exemplar-based fill, in order of priority: the front pixel whose patch
    is most known (confidence) and where a strong edge meets the front (data term) is filled first, by the known
    patch nearest on its filled pixels; so edges that meet the hole are carried straight across before the flat
    areas close over them. guide (H,W,3) or None: compared, weighted, with the source on the patch's unfilled
    pixels, so where the border leaves the choice open the content prediction decides."""
    height, width = hole.shape
    side = 2 * radius + 1
    image = colours.astype(np.float32).copy()
    filled = ~hole
    confidence = filled.astype(np.float32)
    # Every patch wholly inside the image and wholly usable is a source.
    ok = F.avg_pool2d(_tensor(usable.astype(np.float32)), side, 1, 0)[0, 0].numpy() > 1 - 1e-6
    centres = np.argwhere(ok) + radius
    offsets = np.stack(np.meshgrid(np.arange(-radius, radius + 1), np.arange(-radius, radius + 1),
                                   indexing="ij"), -1).reshape(-1, 2)
    if len(centres) == 0:  # no whole known patch at this size: the known colours spread inward
        spread = push_pull_fill(_tensor(image), _tensor(filled.astype(np.float32)))
        return np.where(hole[..., None], _array(spread), image)
    source_y = centres[:, :1] + offsets[None, :, 0]
    source_x = centres[:, 1:] + offsets[None, :, 1]
    sources = image[source_y, source_x]  # (n, side*side, 3)
    grey = image.mean(2)
    padded = np.pad(np.arange(height * width).reshape(height, width), radius, mode="edge")
    while not filled.all():
        front = ~filled & (F.max_pool2d(_tensor(filled.astype(np.float32)), 3, 1, 1)[0, 0].numpy() > 0)
        ys, xs = np.nonzero(front)
        # Confidence: the share of the patch already trusted; data: edge strength across the front.
        trust = F.avg_pool2d(_tensor(confidence), side, 1, radius, count_include_pad=False)[0, 0].numpy()
        gy, gx = np.gradient(np.where(filled, grey, np.nan))
        gy, gx = np.nan_to_num(gy), np.nan_to_num(gx)
        ny, nx = np.gradient(F.avg_pool2d(_tensor(filled.astype(np.float32)), 3, 1, 1)[0, 0].numpy())
        norm = np.hypot(ny, nx) + 1e-6
        edge = np.abs(-gy * nx / norm + gx * ny / norm)  # the isophote (gradient turned 90 degrees) along the normal
        edge = _max_near(edge, filled, radius)
        priority = trust[ys, xs] * (edge[ys, xs] + 1e-3)
        best = int(np.argmax(priority))
        py, px = int(ys[best]), int(xs[best])
        index = padded[py:py + side, px:px + side].reshape(-1)
        ty, tx = index // width, index % width
        inside = (np.abs(ty - py) <= radius) & (np.abs(tx - px) <= radius)  # the edge-repeated border is not the patch
        known = filled[ty, tx] & inside
        target = image[ty, tx]
        distance = (((sources - target[None]) ** 2).sum(2) * known[None]).sum(1)
        if guide is not None:
            unknown = ~filled[ty, tx] & inside
            distance += guide_weight * (((sources - guide[ty, tx][None]) ** 2).sum(2) * unknown[None]).sum(1)
        chosen = int(np.argmin(distance))
        fill_here = ~filled[ty, tx] & inside
        image[ty[fill_here], tx[fill_here]] = sources[chosen][fill_here]
        confidence[ty[fill_here], tx[fill_here]] = trust[py, px]
        filled[ty[fill_here], tx[fill_here]] = True
        grey = image.mean(2)
    return image


def _max_near(values: np.ndarray, filled: np.ndarray, radius: int) -> np.ndarray:
    """Each pixel's largest value among the filled pixels within `radius`: the edges the front is about to meet."""
    masked = np.where(filled, values, 0).astype(np.float32)
    return F.max_pool2d(_tensor(masked), 2 * radius + 1, 1, radius)[0, 0].numpy()
