"""A non-learned content predictor: coarse-to-fine patch-based completion in pixel space (Wexler, Shechtman and
Irani, "Space-Time Completion of Video", 2007), with exhaustive nearest-neighbour search, which is cheap at the
coarse sizes where the content prediction is made.

Each EM step matches every patch that overlaps the hole to its nearest fully-known patch (squared colour
distance), then sets each hole pixel to the average of what the overlapping matches say it should be.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .content import push_pull_fill
from .resample import hole_at, resize

PATCH = 5
COARSEST_SIDE = 24  # start where the hole is a few patches wide
QUERY_CHUNK = 4096
MAX_CANDIDATES = 4096
COARSEST_STEPS_FACTOR = 4


def _level_sizes(height: int, width: int) -> list[tuple[int, int]]:
    sizes = [(height, width)]
    while min(sizes[0]) // 2 >= COARSEST_SIDE:
        h, w = sizes[0]
        sizes.insert(0, (h // 2, w // 2))
    return sizes


def em_step(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """One match-and-vote step: image (1,C,H,W), hole (1,1,H,W) in {0,1}; known pixels stay as they are."""
    _, channels, height, width = image.shape
    (height - PATCH + 1, width - PATCH + 1)  # centres whose patch lies inside the image
    patches = F.unfold(image, PATCH)[0]  # (C*P*P, n) over `inner`
    touches = F.max_pool2d(hole, PATCH, 1)[0, 0].flatten() > 0  # patch contains a hole pixel
    candidates = patches[:, ~touches]
    if candidates.shape[1] > MAX_CANDIDATES:  # an even subsample keeps every kind of patch and bounds the cost
        candidates = candidates[:, ::-(-candidates.shape[1] // MAX_CANDIDATES)]
    if candidates.shape[1] == 0:
        return image
    queries = touches.nonzero()[:, 0]
    squared = (candidates ** 2).sum(dim=0)
    chosen = torch.zeros_like(patches)
    for start in range(0, queries.shape[0], QUERY_CHUNK):
        index = queries[start:start + QUERY_CHUNK]
        # (queries, candidates): the argmax runs along contiguous rows, several times faster than down columns.
        scores = 2 * (patches[:, index].T @ candidates) - squared[None, :]
        chosen[:, index] = candidates[:, scores.argmax(dim=1)]
    counts = torch.zeros(1, PATCH * PATCH, patches.shape[1], dtype=image.dtype, device=image.device)
    counts[:, :, queries] = 1
    summed = F.fold(chosen[None], (height, width), PATCH)
    overlap = F.fold(counts, (height, width), PATCH)
    voted = summed / overlap.clamp_min(1)
    take = (hole > 0) & (overlap > 0)
    return torch.where(take, voted, image)


class PatchFillPredictor:
    """Content prediction by multi-scale patch-based completion: sharp, plausible structure from the photo itself."""

    preferred_side = 0  # the coarsest scale: exhaustive search grows with the square of the area
    smooth_prior = False  # the seamless offset measurably cost its brick test detail

    def __init__(self, iterations: int = 3) -> None:
        self.iterations = iterations

    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        current = image
        for level_index, size in enumerate(_level_sizes(*image.shape[-2:])):
            level, level_hole = resize(image, size, "area"), hole_at(hole, size)
            if level_index == 0:
                current = push_pull_fill(level, 1 - level_hole)
            else:
                current = level * (1 - level_hole) + resize(current, size) * level_hole
            # The coarsest level settles the structure from a featureless start: it needs the most steps, and
            # they are the cheapest.
            for _ in range(self.iterations * (COARSEST_STEPS_FACTOR if level_index == 0 else 1)):
                current = em_step(current, level_hole)
        return current
