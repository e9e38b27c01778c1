"""Resampling images and hole masks between scales (shared by the synthesis, the pipeline and the predictors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .device import one_thread


def resize(t: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """(N,C,H,W) to `size`: area averaging whenever it shrinks (no aliasing), `mode` when it grows."""
    if tuple(t.shape[-2:]) == size:
        return t
    if mode == "area" or size[0] < t.shape[-2]:
        return F.interpolate(t, size=size, mode="area")
    if mode == "bilinear":
        return bilinear(t, size)
    return F.interpolate(t, size=size, mode=mode, align_corners=False)


def bilinear(t: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """(N,C,H,W) resampled bilinearly to `size`, growing or shrinking; torch's kernel rounds differently on
    different thread counts, so it runs on one (engine/device.py one_thread)."""
    with one_thread():
        return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)


def dilate(mask: torch.Tensor, radius: int = 1) -> torch.Tensor:
    return F.max_pool2d(mask, 2 * radius + 1, 1, radius)


def touched(hole: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A {0,1} hole mask at another size: every pixel the hole touches there."""
    return (resize(hole, size, "area") > 1e-6).to(hole.dtype)


def hole_at(hole: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A {0,1} hole mask at another size: any pixel the hole touches, grown by one pixel for the resampling
    filter's reach, so no colour of the removed object leaks into a smaller scale."""
    if tuple(hole.shape[-2:]) == size:
        return hole
    return dilate(touched(hole, size))
