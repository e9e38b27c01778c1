"""Synthetic test images: stripes whose continuation is easy to measure, photo-like noise, centred square holes."""

from __future__ import annotations

import numpy as np


def stripes(height: int, width: int, period: int = 8, channels: int = 3) -> np.ndarray:
    """Vertical dark/light stripes with a little colour: a texture whose continuation is easy to measure."""
    x = np.arange(width)
    row = np.where((x // (period // 2)) % 2 == 0, 40, 210).astype(np.uint8)
    grey = np.broadcast_to(row, (height, width))
    image = np.stack([grey, grey // 2 + 60, 255 - grey], axis=-1)
    return np.ascontiguousarray(image[..., :channels])


def centre_mask(height: int, width: int, size: int, value=255, dtype=np.uint8) -> np.ndarray:
    mask = np.zeros((height, width), dtype)
    top, left = (height - size) // 2, (width - size) // 2
    mask[top:top + size, left:left + size] = value
    return mask


def noisy_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients plus fine noise: something photo-like with detail at every scale."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    base = np.stack([x / width * 150 + 50, y / height * 120 + 60, (x + y) / (height + width) * 100 + 80], -1)
    return np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype(np.uint8)
