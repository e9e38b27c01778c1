"""Mask files, and the hole from an image's transparency: what the user marked as the hole, as float32 0..1.

Rules (the README repeats them):
- Mask: white = hole, black = keep, grey = blend; colour masks count by their luminance; values within
  `MASK_SNAP` of black or white count as black or white (JPEG noise must not turn a whole photo into a faint hole).
- A mask file with any transparency: its opaque pixels, whatever their colour, are the hole (hole = alpha), so a
  hole painted on an empty layer works. A fully opaque mask file is read by luminance.
- No mask file: the image's own transparency is the hole (hole = 1 - alpha).
"""

from __future__ import annotations

import numpy as np

from .files import ImageFileError, PathLike, has_alpha, read_checked

MASK_SNAP = 4 / 255
LUMINANCE = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Pillow's convert("L")


def read_mask(path: PathLike | None, image: np.ndarray) -> np.ndarray:
    """The hole as float32 HxW in 0..1 (1 = fill, 0 = keep, between = blend), from a mask file or, when `path` is
    None, from the image's transparency. The rules are the module docstring's."""
    if path is None:
        if not has_alpha(image):
            raise ImageFileError(None, "no mask given and the image has no alpha channel to take the hole from")
        return _snap(1.0 - _unit_scale(image[..., -1]))
    # A mask of the wrong size is refused before it is decoded.
    pixels = read_checked(path, lambda width, height: _check_same_size(path, (height, width), image))
    return _snap(_mask_from_pixels(pixels))


def _check_same_size(mask_path: PathLike, mask_size: tuple[int, int], image: np.ndarray) -> None:
    (mh, mw), (ih, iw) = mask_size, image.shape[:2]
    if (mh, mw) == (ih, iw):
        return
    hint = ""
    if (mh, mw) == (iw, ih):
        hint = " (one of them is rotated: masks match the pixels as stored, EXIF orientation is not applied)"
    raise ImageFileError(mask_path, f"the mask is {mw}x{mh} pixels but the image is {iw}x{ih}{hint}")


def _mask_from_pixels(pixels: np.ndarray) -> np.ndarray:
    if has_alpha(pixels):
        alpha = pixels[..., -1]
        if (alpha < np.iinfo(alpha.dtype).max).any():
            return _unit_scale(alpha)
        pixels = pixels[..., :-1]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        return _unit_scale(pixels)
    return _unit_scale(pixels) @ LUMINANCE


def _unit_scale(channel: np.ndarray) -> np.ndarray:
    return channel.astype(np.float32) / np.float32(np.iinfo(channel.dtype).max)


def _snap(mask: np.ndarray) -> np.ndarray:
    mask = np.clip(mask, 0.0, 1.0).astype(np.float32)
    mask[mask < MASK_SNAP] = 0.0
    mask[mask > 1.0 - MASK_SNAP] = 1.0
    return mask
