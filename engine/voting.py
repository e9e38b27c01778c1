"""Patch voting: build an image from a nearest-neighbour field by copying each matched known patch's pixels to
where its query cell lies, blended with overlapping Hann windows so no cell edges show (Wexler et al.'s voting
step, driven by neural-patch matches)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .patches import Match


def hann_window(side: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(side*side,): a 2-D Hann window whose copies shifted by side/2 sum to a constant."""
    taps = torch.from_numpy(np.hanning(side + 2)[1:-1].astype(np.float32)).to(device, dtype)
    return (taps[:, None] * taps[None, :]).flatten()


def vote_windows(sources: torch.Tensor, usable: torch.Tensor, query: torch.Tensor, source: torch.Tensor,
                 cell: int, size: tuple[int, int], weights: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(values (1,C,H,W), weight (1,1,H,W)): each query cell of `size` receives the 2cell x 2cell window of
    pixels around its matched source cell, Hann-weighted so that overlapping windows blend without edges.

    sources (B,C,h,w): the images copied from (the photo and its transformed copies); usable (B,1,h,w): 1 where
    their pixels may be copied; query (n,2) cells (row, col) of the destination grid; source (n,3) the matched
    (copy, row, col); weights (n,) how much each match counts (all 1 when None). Values are zero where weight is.
    """
    copies, channels, height, width = sources.shape
    side = 2 * cell
    pad = cell // 2
    rows, cols = -(-height // cell), -(-width // cell)
    stacked = torch.cat([sources * usable, usable], 1)
    # Padded so that the window of cell (i, j) is padded rows [i cell, i cell + 2 cell): one window per cell.
    stacked = F.pad(stacked, (pad, (cols + 1) * cell - width - pad, pad, (rows + 1) * cell - height - pad))
    windows = F.unfold(stacked, side, stride=cell)  # (B, (C+1) side^2, rows*cols)
    picked = windows[source[:, 0], :, source[:, 1] * cols + source[:, 2]]  # (n, (C+1) side^2)
    window = hann_window(side, sources.device, sources.dtype)
    if weights is not None:
        window = window[None, :] * weights[:, None]
    picked = picked.view(-1, channels + 1, side * side) * window.view(-1, 1, side * side)
    out_rows, out_cols = -(-size[0] // cell), -(-size[1] // cell)
    canvas = torch.zeros((channels + 1) * side * side, out_rows * out_cols, dtype=sources.dtype,
                         device=sources.device)
    canvas[:, query[:, 0] * out_cols + query[:, 1]] = picked.flatten(1).T
    folded = F.fold(canvas[None], ((out_rows + 1) * cell, (out_cols + 1) * cell), side, stride=cell)
    folded = folded[..., pad:pad + size[0], pad:pad + size[1]]
    total, weight = folded[:, :channels], folded[:, channels:]
    return total / weight.clamp_min(1e-6), weight


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
