"""A JPEG result that keeps the source JPEG's untouched 8x8 blocks exactly as they were stored.

Decoding a JPEG and encoding it again changes almost every pixel a little, whatever the quality. So the result is
written in the DCT domain instead (jpeglib, libjpeg's coefficient API): every block of every component that holds no
changed pixel keeps the source's quantised coefficients, and only the blocks the hole touches are encoded anew, with
the source's own quantisation tables and chroma sampling. The source's markers (EXIF, ICC profile, comments) travel
as they are.

One honest limit: with subsampled chroma (4:2:0, 4:2:2) a decoder's smooth upsampling blends each chroma sample with
its neighbours, so the row or column of pixels right next to a re-encoded block can decode a level apart even though
its own coefficients are unchanged.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin

ADOBE_TRANSFORM_AT = 11  # APP14 "Adobe": 5 name bytes, version, flags0, flags1, then the colour transform
COMPONENTS = ("Y", "Cb", "Cr")
LIBJPEG = "turbo210"  # jpeglib bundles many libjpeg builds; libjpeg-turbo is the fastest and the one Pillow uses


class CannotKeepBlocks(Exception):  # noqa: N818 - a reason, said to the user in a warning
    """The source's blocks cannot be kept; the message says why in a few words."""


def source_tables(source: Path | None) -> dict | None:
    """The source JPEG's quantisation tables and chroma sampling as Pillow's save arguments; None for a source that
    is no JPEG."""
    if source is None:
        return None
    try:
        with Image.open(source) as im:
            if im.format != "JPEG":
                return None
            return {"qtables": im.quantization, "subsampling": JpegImagePlugin.get_sampling(im)}
    except Exception:  # the source was read before the fill: failing now only means "no tables to keep"
        return None


def write_keeping_blocks(path: Path, pixels: np.ndarray, source: Path, original: np.ndarray | None = None) -> None:
    """Write `pixels` (HxW or HxWx3 uint8) to `path` as a JPEG that keeps every block of the JPEG `source` in which
    no decoded pixel differs from `original` (the source as read_image decoded it; decoded here when not given).
    Raises CannotKeepBlocks when that cannot be done."""
    try:
        import jpeglib
    except ImportError:
        raise CannotKeepBlocks("the jpeglib package is not installed") from None
    if original is None:
        with Image.open(source) as im:
            if im.mode not in ("L", "RGB"):
                raise CannotKeepBlocks(f"the source JPEG is {im.mode}")
            original = np.asarray(im)  # decoded as read_image decodes it: the fill's known pixels are these
    if pixels.shape != original.shape:
        raise CannotKeepBlocks("the result's size differs from the source's")
    changed = pixels != original
    changed = changed.any(axis=-1) if changed.ndim == 3 else changed
    try:
        with jpeglib.version(LIBJPEG):
            stored = jpeglib.read_dct(str(source))
            _check_layout(stored, pixels)
            if changed.any():
                _replace_changed_blocks(stored, pixels, changed)
            stored.write_dct(str(path))
    except CannotKeepBlocks:
        raise
    except Exception as exc:  # libjpeg's own errors come as plain exceptions: any of them means "cannot"
        why = str(exc).strip() or type(exc).__name__
        raise CannotKeepBlocks(f"libjpeg could not rewrite its blocks ({why})") from exc


def _check_layout(stored, pixels: np.ndarray) -> None:
    colour = pixels.ndim == 3
    if stored.num_components != (3 if colour else 1) or stored.has_black:
        raise CannotKeepBlocks(f"the source JPEG has {stored.num_components} colour components")
    for marker in stored.markers:
        content = marker.content or b""
        if content.startswith(b"Adobe") and len(content) > ADOBE_TRANSFORM_AT and colour \
                and content[ADOBE_TRANSFORM_AT] == 0:
            raise CannotKeepBlocks("the source JPEG stores RGB, not YCbCr")


def _replace_changed_blocks(stored, pixels: np.ndarray, changed: np.ndarray) -> None:
    """Encode the MCU-aligned box around the changed pixels with the source's tables and sampling, and copy into
    `stored` the blocks of that encoding that hold a changed pixel."""
    import jpeglib

    sampling = np.asarray(stored.samp_factor)  # per component: (vertical, horizontal)
    most_v, most_h = sampling[:, 0].max(), sampling[:, 1].max()
    mcu_h, mcu_w = 8 * most_v, 8 * most_h
    height, width = changed.shape
    rows, cols = np.nonzero(changed)
    top, left = rows.min() // mcu_h * mcu_h, cols.min() // mcu_w * mcu_w
    bottom = min(height, -(-(rows.max() + 1) // mcu_h) * mcu_h)
    right = min(width, -(-(cols.max() + 1) // mcu_w) * mcu_w)
    box = np.ascontiguousarray(pixels[top:bottom, left:right])
    encoder = jpeglib.from_spatial(box if box.ndim == 3 else box[..., None])
    encoder.samp_factor = sampling
    with tempfile.TemporaryDirectory(prefix="neural-fill-jpeg-") as scratch:
        patch_path = str(Path(scratch) / "patch.jpg")
        encoder.write_spatial(patch_path, qt=stored.qt, quant_tbl_no=stored.quant_tbl_no)
        patch = jpeglib.read_dct(patch_path)
    if not np.array_equal(np.asarray(patch.qt), np.asarray(stored.qt)):
        raise CannotKeepBlocks("libjpeg did not keep the source's quantisation tables")
    for number, name in enumerate(COMPONENTS[:stored.num_components]):
        blocks, new = getattr(stored, name), getattr(patch, name)
        step_y, step_x = 8 * most_v // sampling[number, 0], 8 * most_h // sampling[number, 1]
        touched = _blocks_touched(changed, blocks.shape[:2], step_y, step_x)
        y0, x0 = top // step_y, left // step_x
        span = touched[y0:y0 + new.shape[0], x0:x0 + new.shape[1]]
        target = blocks[y0:y0 + span.shape[0], x0:x0 + span.shape[1]]
        target[span] = new[:span.shape[0], :span.shape[1]][span]  # a view: writes into `stored`


def _blocks_touched(changed: np.ndarray, grid: tuple[int, int], step_y: int, step_x: int) -> np.ndarray:
    """Which blocks of a component (each covering step_y x step_x pixels) hold a changed pixel."""
    rows, cols = grid
    padded = np.zeros((rows * step_y, cols * step_x), bool)
    height, width = min(changed.shape[0], padded.shape[0]), min(changed.shape[1], padded.shape[1])
    padded[:height, :width] = changed[:height, :width]
    return padded.reshape(rows, step_y, cols, step_x).any(axis=(1, 3))
