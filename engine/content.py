"""Content predictors: the global structure the texture optimisation stays close to.

The paper uses a trained content network (a later addition); `DiffusionPredictor` is the non-learned stand-in:
a push-pull (pyramid) diffusion fill, which carries the colours and large gradients of the border into the hole.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention


class ContentPredictor(Protocol):
    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """image (1,C,H,W) in 0..1 and hole (1,1,H,W) in {0,1} -> prediction (1,C,H,W), known pixels kept."""
        ...


def push_pull_fill(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill where `known` is 0 by averaging known pixels down a pyramid and interpolating back up.

    Known-weighted averages at each level ignore hole pixels, so only known colours spread into the hole.
    """
    height, width = image.shape[-2:]
    if known.sum() == 0:
        return image
    if min(height, width) <= 2:
        mean = (image * known).sum((-2, -1), keepdim=True) / known.sum((-2, -1), keepdim=True).clamp_min(1e-8)
        return image * known + mean * (1 - known)
    weight = F.avg_pool2d(known, 2, ceil_mode=True)
    coarse = F.avg_pool2d(image * known, 2, ceil_mode=True) / weight.clamp_min(1e-8)
    coarse = push_pull_fill(coarse, (weight > 0).to(image.dtype))
    up = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return image * known + up * (1 - known)


class DiffusionPredictor:
    """Non-learned content prediction: a smooth push-pull fill of the hole from its surroundings."""

    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return push_pull_fill(image, 1 - hole)


def make_predictor(name: str, device: torch.device | None = None) -> ContentPredictor | None:
    """The predictor named by FillOptions.content; None switches the content term off (the paper's ablation)."""
    if name == "patches":
        from .patch_fill import PatchFillPredictor  # here, not at the top: patch_fill imports this module

        return PatchFillPredictor()
    if name == "diffusion":
        return DiffusionPredictor()
    if name == "network":
        from .content_net import NetworkPredictor, load_content_net

        return NetworkPredictor(load_content_net(device or torch.device("cpu")))
    if name == "none":
        return None
    raise ValueError(f"unknown content predictor {name!r}")
