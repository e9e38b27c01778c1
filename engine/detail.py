"""Native-resolution detail for crops synthesised below their own resolution.

A crop larger than the working size is synthesised at the working size, then upsampled. Upsampling loses the
band of frequencies the working size cannot hold, so we bring that band back from the photo's own known pixels,
guided by the synthesis itself: the final nearest-neighbour field says which known patch each hole cell looks
like, and each hole cell receives the high-frequency band of that known patch at native resolution, blended with
overlapping Hann windows so that no cell edges show.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .patches import Match


def high_frequencies(native: torch.Tensor, working_size: tuple[int, int]) -> torch.Tensor:
    """The part of `native` (1,C,h,w) lost by a round trip through `working_size`."""
    low = F.interpolate(F.interpolate(native, size=working_size, mode="area"), size=native.shape[-2:],
                        mode="bicubic", align_corners=False)
    return native - low


def transfer_detail(native: torch.Tensor, known: torch.Tensor, working_size: tuple[int, int], match: Match,
                    stride: int) -> torch.Tensor:
    """Detail (1,C,h,w) for the hole: each matched cell's source band, window-blended; zero where none lands.

    native: the crop at native resolution (known pixels real); known: (1,1,h,w) 1 where pixels may be copied.
    """
    band = high_frequencies(native, working_size)[0].permute(1, 2, 0).cpu().numpy()
    usable = known[0, 0].cpu().numpy().astype(np.float32)
    height, width = usable.shape
    cell_h = stride * height / working_size[0]
    cell_w = stride * width / working_size[1]
    half_h, half_w = max(1, int(round(cell_h))), max(1, int(round(cell_w)))
    window = np.outer(np.hanning(2 * half_h + 2)[1:-1], np.hanning(2 * half_w + 2)[1:-1]).astype(np.float32)
    total = np.zeros_like(band)
    weight = np.zeros((height, width), np.float32)
    for (qy, qx), (sy, sx) in zip(match.query.tolist(), match.source.tolist()):
        dest_y, dest_x = int(round((qy + 0.5) * cell_h)) - half_h, int(round((qx + 0.5) * cell_w)) - half_w
        shift_y = int(round((sy - qy) * cell_h))
        shift_x = int(round((sx - qx) * cell_w))
        # Clip the window so that both its destination and its source lie inside the crop.
        y0 = max(0, dest_y, -shift_y)
        x0 = max(0, dest_x, -shift_x)
        y1 = min(height, dest_y + 2 * half_h, height - shift_y)
        x1 = min(width, dest_x + 2 * half_w, width - shift_x)
        if y1 <= y0 or x1 <= x0:
            continue
        w = window[y0 - dest_y:y1 - dest_y, x0 - dest_x:x1 - dest_x] * usable[y0 + shift_y:y1 + shift_y,
                                                                                x0 + shift_x:x1 + shift_x]
        total[y0:y1, x0:x1] += band[y0 + shift_y:y1 + shift_y, x0 + shift_x:x1 + shift_x] * w[..., None]
        weight[y0:y1, x0:x1] += w
    detail = total / np.maximum(weight, 1e-6)[..., None]
    return torch.from_numpy(detail).permute(2, 0, 1)[None].to(native.device)
