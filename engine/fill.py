"""fill(): the one entry point. (Work in progress: being written.)"""

from __future__ import annotations

import numpy as np

from .options import FillOptions
from .progress import CancelCheck, ProgressCallback


def fill(image: np.ndarray, mask: np.ndarray, options: FillOptions | None = None,
         progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> np.ndarray:
    """Fill the masked part of `image` and return a new array of the same shape and dtype.

    image: HxW, HxWx1, HxWx3 or HxWx4 (alpha last), uint8, uint16 or float32 (0..1).
    mask: HxW, same height and width; 0 = keep, 1 (or 255 / 65535 for integer masks) = fill, between = blend.
    Raises MaskError / ImageError / OptionsError for bad input, Cancelled when `cancel()` answers True,
    WeightsError when the VGG-19 weights have not been fetched.
    """
    raise NotImplementedError
