"""Which content prediction a crop gets: the candidate that best predicts a ring of known pixels hidden just
outside the hole.

The content network predicts what photos hold on average, soft where it is unsure. On a regular pattern (stripes,
tiles, a fence) the photo's own patches continue the border exactly where the network's blur loses the pattern.
Hiding a ring of known pixels and asking each candidate to predict it tells the two cases apart without guessing
what kind of pattern the photo holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .content import ContentPredictor, DiffusionPredictor
from .content_net import NetworkPredictor, load_content_net
from .patch_fill import PatchFillPredictor
from .reductions import total
from .resample import dilate, resize, touched

CHECK_SIDE = 128  # the crop's longest side for the check: the network's own size, cheap for every candidate
RING = 4  # pixels hidden around the hole at that size: a 16th of the paper's 64 px hole
# A later candidate must beat the first by this factor on the ring: the first is the better prior on photos
# (docs/quality.md), and a near tie on a thin ring says little about the hole.
LATER_MUST_BEAT = 0.75


def ring_errors(candidates: Sequence[ContentPredictor], image: torch.Tensor, hole: torch.Tensor,
                usable: torch.Tensor) -> list[float]:
    """Mean absolute error of each candidate on the ring, all at the size of `image` (1,C,H,W) in 0..1.

    hole (1,1,H,W) {0,1}; usable (1,1,H,W): known pixels that are real (not padding)."""
    grown = dilate(hole, RING)
    ring = (grown - hole).clamp_min(0) * usable
    if ring.sum() == 0:
        return [0.0] * len(candidates)
    errors = []
    for candidate in candidates:
        predicted = candidate.predict(image, grown)
        errors.append(float(total((predicted - image).abs().mean(1, keepdim=True) * ring) / ring.sum()))
    return errors


def choose_predictor(candidates: Sequence[ContentPredictor], image: torch.Tensor, hole: torch.Tensor,
                     excluded: torch.Tensor) -> ContentPredictor | None:
    """The first candidate, unless a later one predicts the hidden ring clearly better. image (1,C,H,W) 0..1 at
    the crop's working size; hole, excluded (1,1,H,W)."""
    if len(candidates) < 2:
        return candidates[0] if candidates else None
    height, width = image.shape[-2:]
    factor = min(1.0, CHECK_SIDE / max(height, width))
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    small_hole = touched(hole, size)
    usable = (resize(excluded, size, "area") < 1e-6).to(hole.dtype)
    errors = ring_errors(candidates, resize(image, size, "area"), small_hole, usable)
    best = min(range(1, len(candidates)), key=lambda i: errors[i])
    return candidates[best] if errors[best] < LATER_MUST_BEAT * errors[0] else candidates[0]


def make_predictors(name: str, device: torch.device | None = None,
                    precision: torch.dtype = torch.float32) -> list[ContentPredictor]:
    """The candidates for FillOptions.content, the preferred first (`choose_predictor` above picks one per crop);
    none switches the content term off (the paper's ablation). precision: the content network's (engine/device.py)."""
    if name == "patches":
        return [PatchFillPredictor()]
    if name == "diffusion":
        return [DiffusionPredictor()]
    if name == "network":
        # The patches take over where they continue the border clearly better: regular patterns.
        return [NetworkPredictor(load_content_net(device or torch.device("cpu")), precision), PatchFillPredictor()]
    if name == "none":
        return []
    raise ValueError(f"unknown content predictor {name!r}")
