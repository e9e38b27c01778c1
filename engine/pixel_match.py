"""Pixel-precise refinement of a scale's copy: PatchMatch (Barnes et al. 2009) on 11x11 colour patches, started
from the neural-patch field, then voted.

The neural field places texture cell by cell (4 px); along a thin stroke or a sharp edge a copy must line up to
the pixel. Each pixel of the hole (and of its 5 px rim) keeps a source pixel; the search improves it by taking
over its neighbours' shifts (jumps of 4, 2 and 1 px, one half of a checkerboard at a time so that neighbours never
swap at once) and by trying random shifts nearby, on the colour difference of the two patches (the hole's own
pixels count 0.1 and are compared with the source slightly blurred, the known ones count 1) plus the blurred content
prediction against the source's blurred colours. From the second scale on, each pixel also tries the source its
pixel had at the scale before, doubled (PatchMatch's coarse-to-fine field), so a copy that lined up stays lined up.
A source patch may overlap the hole (its centre and MIN_USABLE of it usable): its hole pixels neither count in its
cost nor vote. The hole is then rebuilt from the sources: colours averaged over the patches covering each pixel,
weighted by how well they matched, and the gradient each pixel's own source has, integrated in the gradient domain.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from scipy.ndimage import distance_transform_edt

from . import pixel_search
from .filters import forward_differences, gaussian_blur, normalised_blur
from .neural_em import Field
from .poisson import screen_for, screened_poisson

# 11x11 patches: larger than PatchMatch's inpainting's 7x7, they continue a brick course or a stroke's edge in phase
# (docs/quality.md).
RADIUS = 5
HOLE_WEIGHT = 0.1  # how much a patch's current (synthesised) pixels count against its known ones
GUIDE_SIGMA = 4.0  # px
GUIDE_WEIGHT = 1.0
JUMPS = (4, 2, 1)
SEARCH = (16, 8, 4, 2, 1)  # px: the random search radii
ROUNDS = 2  # search rounds per vote
CROSSOVER = 8.0  # px: below this the gradients come from each pixel's own source
# px: a patch's synthesised pixels are compared with the source blurred this much, as soft as the estimate is:
# against sharp sources a soft estimate picks the calmest ones, and the fill comes out smoother than its border.
HOLE_BLUR = 0.5
# A source patch needs its centre and this share of its pixels usable. Partial sources (as PatchMatch's inpainting
# allows) reach the pixels right at a thin hole's edge, which whole patches cannot (docs/quality.md).
MIN_USABLE = 0.15


def _numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy())


class PixelMatch:
    """One scale's pixel search and vote. image (1,3,H,W) 0..1 the current estimate (known pixels real); hole
    (1,1,H,W) {0,1}; usable (1,1,H,W) pixels that may be copied; reference the content prediction."""

    def __init__(self, image: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor, reference: torch.Tensor,
                 generator: torch.Generator, check_cancel: Callable[[], None]) -> None:
        self.height, self.width = image.shape[-2:]
        self.device = image.device
        self.source = image  # known pixels are what is copied; the hole's are never sources
        share = F.avg_pool2d(usable, 2 * RADIUS + 1, 1, RADIUS)[0, 0]
        valid = (share >= MIN_USABLE - 1e-3) & (usable[0, 0] > 0)
        valid[:RADIUS, :] = valid[-RADIUS:, :] = False
        valid[:, :RADIUS] = valid[:, -RADIUS:] = False
        self.valid = valid
        self.hole = hole
        touched = F.max_pool2d(hole, 2 * RADIUS + 1, 1, RADIUS)[0, 0] > 0
        self.queries = touched.nonzero()
        self.index = torch.full((self.height, self.width), -1, dtype=torch.long, device=self.device)
        self.index[self.queries[:, 0], self.queries[:, 1]] = torch.arange(self.queries.shape[0], device=self.device)
        self.generator = generator
        self.check_cancel = check_cancel
        # The search runs compiled on the CPU (engine/pixel_search.py), on these arrays.
        query_guide = gaussian_blur(reference, GUIDE_SIGMA)[0][:, self.queries[:, 0], self.queries[:, 1]]
        self.query_guide = _numpy(query_guide.T)
        self.source_guide = _numpy(normalised_blur(image, usable, GUIDE_SIGMA)[0].permute(1, 2, 0))
        # The sources as the known pixels are compared with them, then as the synthesised ones are: read at once.
        self.padded_source = self._pad(torch.cat([image, gaussian_blur(image, HOLE_BLUR), usable], 1))
        padded_hole = F.pad(hole, (RADIUS, RADIUS, RADIUS, RADIUS), mode="replicate")
        self.padded_hole = _numpy(padded_hole[0, 0].float())
        # What each query's patch weighs at most (its synthesised pixels HOLE_WEIGHT, its known ones 1): the search
        # stops summing a source once it cannot win.
        weight = F.avg_pool2d(1 - (1 - HOLE_WEIGHT) * padded_hole, 2 * RADIUS + 1, 1) * (2 * RADIUS + 1) ** 2
        self.query_weight = _numpy(weight[0, 0, self.queries[:, 0], self.queries[:, 1]] * (1 + 1e-4))  # rounding
        self.search_valid = _numpy(valid)
        self.query_y, self.query_x = _numpy(self.queries[:, 0]), _numpy(self.queries[:, 1])
        self.search_index = _numpy(self.index)
        self.search_usable = _numpy(usable[0, 0].float())
        self.source_pixels = _numpy(image[0].permute(1, 2, 0).float())
        self.hole_pixels = (hole[0, 0] > 0).nonzero(as_tuple=True)
        self.sources: torch.Tensor | None = None  # (2,H,W) after run: each hole pixel's source, -1 elsewhere

    def _pad(self, x: torch.Tensor) -> np.ndarray:
        """(1,C,H,W) -> (H+2R, W+2R, C) float32 numpy, padded by repeating the border."""
        padded = F.pad(x, (RADIUS, RADIUS, RADIUS, RADIUS), mode="replicate")[0]
        return _numpy(padded.permute(1, 2, 0).float())

    def _costs(self, current: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
        return pixel_search.costs(current, self.padded_hole, self.padded_source, self.search_valid, self.query_guide,
                                  self.source_guide, self.query_weight, self.query_y, self.query_x, sy, sx, RADIUS,
                                  np.float32(HOLE_WEIGHT), np.float32(GUIDE_WEIGHT))

    def _clamp(self, y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return y.clamp(RADIUS, self.height - 1 - RADIUS), x.clamp(RADIUS, self.width - 1 - RADIUS)

    def start(self, field: Field) -> torch.Tensor:
        """(n,2) source pixels from a neural field on this scale's grid: each pixel keeps its place within its
        cell; cells without a match on the photo itself (matched into a transformed copy, or none) take the
        nearest matched cell's shift."""
        cell = field.stride
        rows, cols = -(-self.height // cell), -(-self.width // cell)
        on_photo = field.source[:, 0] == 0
        query, source = field.query[on_photo], field.source[on_photo, 1:]
        if query.shape[0] == 0:
            return self.own_places()
        shift = torch.zeros(2, rows, cols, dtype=torch.long, device=self.device)
        shift[:, query[:, 0], query[:, 1]] = (source - query).T
        matched = torch.zeros(rows, cols, dtype=torch.bool)
        matched[query[:, 0].cpu(), query[:, 1].cpu()] = True
        _, (near_y, near_x) = distance_transform_edt(~matched.numpy(), return_indices=True)
        near_y, near_x = torch.from_numpy(near_y).to(self.device), torch.from_numpy(near_x).to(self.device)
        shift = shift[:, near_y, near_x].permute(1, 2, 0) * cell
        y, x = self.queries[:, 0], self.queries[:, 1]
        moved = shift[y // cell, x // cell]
        return torch.stack(self._clamp(y + moved[:, 0], x + moved[:, 1]), 1)

    def own_places(self) -> torch.Tensor:
        """(n,2) each pixel's own place (clamped off the border) as its source: none of the hole's is usable, so
        the first search takes the nearest usable ones its random shifts find."""
        return torch.stack(self._clamp(self.queries[:, 0], self.queries[:, 1]), 1)

    def inherited(self, coarser: torch.Tensor) -> torch.Tensor | None:
        """(n,2) sources from a field of the scale half this size ((2,H/2,W/2), -1 where none): each pixel takes
        its coarser pixel's source, doubled, at the same place within it; None where nothing is to be had (a
        field of another size, or a pixel without a source)."""
        if (2 * coarser.shape[1], 2 * coarser.shape[2]) != (self.height, self.width):
            return None
        y, x = self.queries[:, 0], self.queries[:, 1]
        cy, cx = y // 2, x // 2
        source = coarser[:, cy, cx]
        if bool((source < 0).any()):
            return None
        return torch.stack(self._clamp(2 * source[0] + y % 2, 2 * source[1] + x % 2), 1)

    def run(self, current: torch.Tensor, sources: torch.Tensor, votes: int,
            alternative: torch.Tensor | None = None) -> torch.Tensor:
        sy, sx = _numpy(sources[:, 0]).copy(), _numpy(sources[:, 1]).copy()
        best = np.empty(0, dtype=np.float32)
        radii, jumps = np.array(SEARCH, dtype=np.int64), np.array(JUMPS, dtype=np.int64)
        for number in range(votes):
            self.check_cancel()
            padded = self._pad(current)
            best = self._costs(padded, sy, sx)
            if number == 0 and alternative is not None:
                other_y, other_x = _numpy(alternative[:, 0]), _numpy(alternative[:, 1])
                cost = self._costs(padded, other_y, other_x)
                better = cost < best
                sy, sx = np.where(better, other_y, sy), np.where(better, other_x, sx)
                best = np.minimum(cost, best)
            seed = np.uint64(torch.randint(0, 2**62, (1,), generator=self.generator).item())
            for number in range(ROUNDS):
                self.check_cancel()  # a round on a big crop takes a good part of a second
                pixel_search.search(padded, self.padded_hole, self.padded_source, self.search_valid,
                                    self.query_guide, self.source_guide, self.query_weight, self.query_y,
                                    self.query_x,
                                    self.search_index, sy, sx, best, number, radii, jumps, seed, RADIUS,
                                    np.float32(HOLE_WEIGHT), np.float32(GUIDE_WEIGHT))
            current = self._vote(current, sy, sx, best)
        y, x = self.queries[:, 0], self.queries[:, 1]
        source_y, source_x = self._tensors(sy, sx)
        self.sources = torch.full((2, self.height, self.width), -1, dtype=torch.long, device=self.device)
        self.sources[:, y, x] = torch.stack([source_y, source_x])
        self.check_cancel()
        return self._sharpen(current, source_y, source_x)

    def _tensors(self, *arrays: np.ndarray) -> list[torch.Tensor]:
        return [torch.from_numpy(a).to(self.device) for a in arrays]

    def _vote(self, current: torch.Tensor, sy: np.ndarray, sx: np.ndarray, best: np.ndarray) -> torch.Tensor:
        """The hole rebuilt from the known pixels the patches' sources cover, weighted by how well each matched."""
        finite = best[np.isfinite(best)]
        scale = max(float(np.median(finite)), 1e-8) if finite.size else 1.0
        similarity = np.exp(-np.minimum(best / scale, 30)).astype(np.float32)  # inf costs give 0
        hy, hx = self.hole_pixels
        voted = torch.from_numpy(pixel_search.vote(self.source_pixels, self.search_usable, self.search_index, sy, sx,
                                                   similarity, _numpy(hy), _numpy(hx), RADIUS)).to(self.device)
        averaged = current.clone()
        before = current[0][:, hy, hx]
        averaged[0][:, hy, hx] = torch.where(torch.isnan(voted.T), before, voted.T.to(current.dtype))
        return averaged

    def _sharpen(self, averaged: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor) -> torch.Tensor:
        """Fine detail: each pixel takes the gradient its own source has; the averaged vote gives the rest."""
        hy, hx = self.hole_pixels
        own = self.index[hy, hx]
        src_y, src_x = sy[own], sx[own]
        dx_image, dy_image = forward_differences(self.source)
        want_dx, want_dy = forward_differences(averaged)
        want_dx[0][:, hy, hx] = dx_image[0][:, src_y, src_x]
        want_dy[0][:, hy, hx] = dy_image[0][:, src_y, src_x]
        solved = screened_poisson(averaged, self.hole, want_dx, want_dy, averaged, screen_for(CROSSOVER))
        return (averaged * (1 - self.hole) + solved * self.hole).clamp(0, 1)
