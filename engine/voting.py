"""Patch voting: build an image from a nearest-neighbour field by copying each matched known patch's pixels to
where its query cell lies, blended with overlapping Hann windows so no cell edges show (Wexler et al.'s voting
step, driven by neural-patch matches)."""

from __future__ import annotations

import numpy as np
import torch

from .patches import Match


def vote_patches(source: torch.Tensor, usable: torch.Tensor, match: Match, cell_h: float,
                 cell_w: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(values (1,C,h,w), weight (1,1,h,w)): each query cell receives the pixels around its matched source cell.

    source: what is copied (an image or a band of one); usable: (1,1,h,w) 1 where pixels may be copied from;
    cell_h, cell_w: pixels per feature cell of the match's grid. Values are zero where weight is zero.
    """
    values = source[0].permute(1, 2, 0).cpu().numpy()
    usable_np = usable[0, 0].cpu().numpy().astype(np.float32)
    height, width = usable_np.shape
    half_h, half_w = max(1, int(round(cell_h))), max(1, int(round(cell_w)))
    window = np.outer(np.hanning(2 * half_h + 2)[1:-1], np.hanning(2 * half_w + 2)[1:-1]).astype(np.float32)
    total = np.zeros_like(values)
    weight = np.zeros((height, width), np.float32)
    for (qy, qx), (sy, sx) in zip(match.query.tolist(), match.source.tolist(), strict=False):
        top, left = int(round((qy + 0.5) * cell_h)) - half_h, int(round((qx + 0.5) * cell_w)) - half_w
        shift_y, shift_x = int(round((sy - qy) * cell_h)), int(round((sx - qx) * cell_w))
        # Clip the window so that both its destination and its source lie inside the crop.
        y0, x0 = max(0, top, -shift_y), max(0, left, -shift_x)
        y1 = min(height, top + 2 * half_h, height - shift_y)
        x1 = min(width, left + 2 * half_w, width - shift_x)
        if y1 <= y0 or x1 <= x0:
            continue
        src = (slice(y0 + shift_y, y1 + shift_y), slice(x0 + shift_x, x1 + shift_x))
        w = window[y0 - top:y1 - top, x0 - left:x1 - left] * usable_np[src]
        total[y0:y1, x0:x1] += values[src] * w[..., None]
        weight[y0:y1, x0:x1] += w
    voted = total / np.maximum(weight, 1e-6)[..., None]
    device = source.device
    return (torch.from_numpy(voted).permute(2, 0, 1)[None].to(device),
            torch.from_numpy(weight)[None, None].to(device))
