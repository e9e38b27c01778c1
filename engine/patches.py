"""Neural patches: 3x3 feature patches from the known region, and nearest-neighbour matching by normalised
cross-correlation (cosine similarity), as in Li & Wand's MRF loss and Yang et al.'s texture term."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

PATCH = 3
# Fewer candidates than this and the stride is dropped to 1: small crops at coarse scales have few known cells.
MIN_CANDIDATES = 256
# Query patches matched per chunk: bounds memory at (candidates x chunk) scores.
QUERY_CHUNK = 2048


def cells_touching(pixel_mask: torch.Tensor, stride: int) -> torch.Tensor:
    """(1,1,H,W) pixel mask -> (h,w) bool: feature cells whose stride x stride pixel block has any masked pixel."""
    return F.max_pool2d(pixel_mask.float(), stride, stride, ceil_mode=True)[0, 0] > 0


def patch_footprint(cells: torch.Tensor) -> torch.Tensor:
    """(h,w) bool -> (h,w) bool: centres whose 3x3 patch contains any of `cells`."""
    return F.max_pool2d(cells[None, None].float(), PATCH, 1, PATCH // 2)[0, 0] > 0


@dataclass
class Match:
    target: torch.Tensor  # (1,C,h,w): matched patches folded back, averaged where they overlap
    covered: torch.Tensor  # (1,1,h,w): 1 where any matched patch lands
    source: torch.Tensor  # (q,2) long: candidate centre (row, col) in the bank's grid for each query
    query: torch.Tensor  # (q,2) long: query centre (row, col) in the query grid


class PatchBank:
    """Candidate patches drawn only from the known region: no candidate's 3x3 footprint touches an excluded cell."""

    def __init__(self, features: torch.Tensor, excluded_cells: torch.Tensor, stride: int) -> None:
        _, channels, height, width = features.shape
        allowed = ~patch_footprint(excluded_cells)
        # Border centres would include zero padding: never candidates.
        allowed[0, :] = allowed[-1, :] = False
        allowed[:, 0] = allowed[:, -1] = False
        centres = self._sample(allowed, stride)
        patches = F.unfold(features, PATCH, padding=PATCH // 2)[0]  # (C*9, h*w)
        self.patches = patches[:, centres[:, 0] * width + centres[:, 1]].contiguous()  # (C*9, n)
        self.normalised = self.patches / self.patches.norm(dim=0, keepdim=True).clamp_min(1e-8)
        self.centres = centres
        self.channels = channels

    @staticmethod
    def _sample(allowed: torch.Tensor, stride: int) -> torch.Tensor:
        grid = torch.zeros_like(allowed)
        grid[::stride, ::stride] = True
        centres = (allowed & grid).nonzero()
        if stride > 1 and centres.shape[0] < MIN_CANDIDATES:
            centres = allowed.nonzero()
        return centres

    def __len__(self) -> int:
        return self.centres.shape[0]

    @torch.no_grad()
    def match(self, features: torch.Tensor, hole_cells: torch.Tensor,
              check: Callable[[], None] = lambda: None) -> Match:
        """Best candidate for every patch of `features` that overlaps `hole_cells`, and the target map they make."""
        _, channels, height, width = features.shape
        query_cells = patch_footprint(hole_cells).nonzero()  # (q,2)
        if len(self) == 0:  # a crop too small to hold one known patch: the texture term has nothing to say
            zeros = torch.zeros_like(features)
            return Match(zeros, zeros[:, :1], query_cells[:0], query_cells[:0])
        flat = query_cells[:, 0] * width + query_cells[:, 1]
        patches = F.unfold(features, PATCH, padding=PATCH // 2)[0][:, flat]  # (C*9, q)
        best = torch.empty(flat.shape[0], dtype=torch.long, device=features.device)
        # The query's own norm scales all its scores alike, so the argmax needs only the candidates normalised.
        for start in range(0, flat.shape[0], QUERY_CHUNK):
            check()
            # (chunk, n): the argmax runs along contiguous rows, several times faster than down columns.
            scores = patches[:, start:start + QUERY_CHUNK].T @ self.normalised
            best[start:start + QUERY_CHUNK] = scores.argmax(dim=1)
        chosen = torch.zeros(channels * PATCH * PATCH, height * width, device=features.device, dtype=features.dtype)
        chosen[:, flat] = self.patches[:, best]
        counts = torch.zeros(1, PATCH * PATCH, height * width, device=features.device, dtype=features.dtype)
        counts[:, :, flat] = 1
        fold = dict(output_size=(height, width), kernel_size=PATCH, padding=PATCH // 2)
        summed = F.fold(chosen[None], **fold)
        overlap = F.fold(counts, **fold)
        target = summed / overlap.clamp_min(1)
        return Match(target=target, covered=(overlap > 0).to(features.dtype), source=self.centres[best],
                     query=query_cells)
