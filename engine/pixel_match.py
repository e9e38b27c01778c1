"""Pixel-precise refinement of a scale's copy: PatchMatch (Barnes et al. 2009) on 7x7 colour patches, started
from the neural-patch field, then voted.

The neural field places texture cell by cell (4 px); along a thin stroke or a sharp edge a copy must line up to
the pixel. Each pixel of the hole (and of its 3 px rim) keeps a source pixel; the search improves it by taking
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

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from scipy.ndimage import distance_transform_edt

from .filters import forward_differences, gaussian_blur, normalised_blur
from .neural_em import Field
from .poisson import screen_for, screened_poisson

RADIUS = 3  # 7x7 patches, as PatchMatch's inpainting
MATCH_STEP = 2  # the patch distance reads every other pixel of the patch: 16 of 49, nearly the same ranking
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
# allows) reach the pixels right at a thin hole's edge, which whole 7x7 patches cannot (docs/quality.md).
MIN_USABLE = 0.15


def _offsets(step: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.arange(-RADIUS, RADIUS + 1, step, device=device)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return dy.flatten(), dx.flatten()


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
        self.match_dy, self.match_dx = _offsets(MATCH_STEP, self.device)
        self.vote_dy, self.vote_dx = _offsets(1, self.device)
        self.query_guide = gaussian_blur(reference, GUIDE_SIGMA)[0][:, self.queries[:, 0], self.queries[:, 1]]
        self.source_guide = normalised_blur(image, usable, GUIDE_SIGMA)[0]
        self.generator = generator
        self.check_cancel = check_cancel
        # The sources as the known pixels are compared with them, then as the synthesised ones are: read at once.
        self.padded_source = self._pad(torch.cat([image, gaussian_blur(image, HOLE_BLUR), usable], 1))
        self.usable = usable[0, 0]
        self.sources: torch.Tensor | None = None  # (2,H,W) after run: each hole pixel's source, -1 elsewhere

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """(1,C,H,W) -> ((H+2R)*(W+2R), C): padded, a pixel's channels side by side, so a gather reads each
        patch pixel as one short contiguous row (reading C strided planes took most of the search's time)."""
        padded = F.pad(x, (RADIUS, RADIUS, RADIUS, RADIUS), mode="replicate")[0]
        return padded.permute(1, 2, 0).reshape(-1, padded.shape[0]).contiguous()

    def _gather(self, padded: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(C, n, P): the patches (read at MATCH_STEP) centred at (y, x) of a padded image (see _pad)."""
        row = y[:, None] + self.match_dy + RADIUS
        index = row * (self.width + 2 * RADIUS) + x[:, None] + self.match_dx + RADIUS
        return padded[index].permute(2, 0, 1)

    def _cost(self, patches: torch.Tensor, weights: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        source = self._gather(self.padded_source, y, x)
        channels = patches.shape[0]
        weights = weights * source[-1]  # a partial source's hole pixels say nothing
        source = torch.where(weights < 1, source[channels:2 * channels], source[:channels])
        difference = ((patches - source) ** 2).sum(0)
        cost = (difference * weights).sum(1) / weights.sum(1).clamp_min(1e-6)
        cost = cost + GUIDE_WEIGHT * ((self.query_guide - self.source_guide[:, y, x]) ** 2).sum(0)
        return torch.where(self.valid[y, x], cost, torch.full_like(cost, torch.inf))

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
        y, x = self.queries[:, 0], self.queries[:, 1]
        sy, sx = sources[:, 0].clone(), sources[:, 1].clone()
        parity = (y + x) % 2
        hole_patch = self._gather(self._pad(self.hole), y, x)[0]
        weights = 1 - (1 - HOLE_WEIGHT) * hole_patch
        best = torch.empty(0)
        for number in range(votes):
            self.check_cancel()
            patches = self._gather(self._pad(current), y, x)
            best = self._cost(patches, weights, sy, sx)
            if number == 0 and alternative is not None:
                cost = self._cost(patches, weights, alternative[:, 0], alternative[:, 1])
                better = cost < best
                sy, sx = torch.where(better, alternative[:, 0], sy), torch.where(better, alternative[:, 1], sx)
                best = torch.minimum(cost, best)
            for _ in range(ROUNDS):
                self.check_cancel()  # a round of a big crop's search takes a good part of a second
                for radius in SEARCH:
                    ty = sy + torch.randint(-radius, radius + 1, sy.shape, generator=self.generator).to(self.device)
                    tx = sx + torch.randint(-radius, radius + 1, sx.shape, generator=self.generator).to(self.device)
                    ty, tx = self._clamp(ty, tx)
                    cost = self._cost(patches, weights, ty, tx)
                    better = cost < best
                    sy, sx, best = torch.where(better, ty, sy), torch.where(better, tx, sx), torch.minimum(cost, best)
                for jump in JUMPS:
                    self.check_cancel()
                    for half in (0, 1):
                        for dy, dx in ((0, jump), (0, -jump), (jump, 0), (-jump, 0)):
                            ny, nx = y + dy, x + dx
                            inside = (ny >= 0) & (ny < self.height) & (nx >= 0) & (nx < self.width)
                            neighbour = self.index[ny.clamp(0, self.height - 1), nx.clamp(0, self.width - 1)]
                            has = inside & (neighbour >= 0) & (parity == half)
                            neighbour = neighbour.clamp_min(0)
                            ty, tx = self._clamp(sy[neighbour] - dy, sx[neighbour] - dx)
                            cost = torch.where(has, self._cost(patches, weights, ty, tx),
                                               torch.full_like(best, torch.inf))
                            better = cost < best
                            sy, sx = torch.where(better, ty, sy), torch.where(better, tx, sx)
                            best = torch.minimum(cost, best)
            current = self._vote(current, sy, sx, best)
        self.sources = torch.full((2, self.height, self.width), -1, dtype=torch.long, device=self.device)
        self.sources[:, y, x] = torch.stack([sy, sx])
        self.check_cancel()
        return self._sharpen(current, sy, sx)

    def _vote(self, current: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        finite = best[torch.isfinite(best)]
        scale = finite.median().clamp_min(1e-8) if finite.numel() else torch.tensor(1.0)
        similarity = torch.exp(-(best / scale).clamp(max=30))  # inf costs give 0
        hy, hx = (self.hole[0, 0] > 0).nonzero(as_tuple=True)
        total = torch.zeros(current.shape[1], hy.shape[0], device=self.device)
        weight = torch.zeros(hy.shape[0], device=self.device)
        image = self.source[0]
        for dy, dx in zip(self.vote_dy.tolist(), self.vote_dx.tolist(), strict=True):
            # The patch centred at (hy - dy, hx - dx) covers the pixel at its offset (dy, dx).
            cy, cx = hy - dy, hx - dx
            inside = (cy >= 0) & (cy < self.height) & (cx >= 0) & (cx < self.width)
            centre = self.index[cy.clamp(0, self.height - 1), cx.clamp(0, self.width - 1)]
            py = (sy[centre.clamp_min(0)] + dy).clamp(0, self.height - 1)
            px = (sx[centre.clamp_min(0)] + dx).clamp(0, self.width - 1)
            counts = (inside & (centre >= 0)).to(current.dtype) * similarity[centre.clamp_min(0)] * \
                self.usable[py, px]
            total += image[:, py, px] * counts
            weight += counts
        averaged = current.clone()
        averaged[0][:, hy, hx] = torch.where(weight > 0, total / weight.clamp_min(1e-30), current[0][:, hy, hx])
        return averaged

    def _sharpen(self, averaged: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor) -> torch.Tensor:
        """Fine detail: each pixel takes the gradient its own source has; the averaged vote gives the rest."""
        hy, hx = (self.hole[0, 0] > 0).nonzero(as_tuple=True)
        own = self.index[hy, hx]
        src_y, src_x = sy[own], sx[own]
        dx_image, dy_image = forward_differences(self.source)
        want_dx, want_dy = forward_differences(averaged)
        want_dx[0][:, hy, hx] = dx_image[0][:, src_y, src_x]
        want_dy[0][:, hy, hx] = dy_image[0][:, src_y, src_x]
        solved = screened_poisson(averaged, self.hole, want_dx, want_dy, averaged, screen_for(CROSSOVER))
        return (averaged * (1 - self.hole) + solved * self.hole).clamp(0, 1)
