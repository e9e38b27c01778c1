"""Image files: PNG, JPEG and TIFF in, the same out, at the file's own bit depth (masks: daemon/masks.py).

Pillow reads and writes everything it can hold exactly: 8-bit images of any layout and 16-bit grey. It cannot hold
16-bit colour (it silently reduces 48/64-bit PNG and 16-bit RGB TIFF to 8 bits, and cannot open 16-bit grey+alpha
TIFF at all), so 16-bit PNG goes through pypng and 16-bit TIFF through tifffile: both small, pure Python, well kept.
tifffile decodes LZW and JPEG-in-TIFF only with the optional `imagecodecs` package; without it such a 16-bit colour
TIFF is refused with a message saying so (8-bit and 16-bit grey ones fall back to Pillow, which decodes them).
What a file holds and may cost is read from its header first (daemon/image_headers.py): a decompression bomb is
refused before it is decoded.

Rules (the README repeats them):
- Pixels are used as stored: EXIF orientation is not applied, because a mask is drawn on the stored pixels. The
  output keeps the source's EXIF (orientation included) and ICC profile, so viewers show it the way they show the
  source.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import png
import tifffile
from PIL import Image

from daemon.image_headers import Layout, format_of, max_decoded_bytes, max_pixels, png_bit_depth, stored_layout
from daemon.jpeg_blocks import CannotKeepBlocks, source_tables, write_keeping_blocks
from engine.atomic import atomic_path

PathLike = str | os.PathLike

OUTPUT_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}
IMAGE_SUFFIXES = tuple(OUTPUT_FORMATS)  # what read_image reads and write_image writes: a folder's photos are these
JPEG_QUALITY = 95  # for a source that is no JPEG: the fill is a retouch, keep the rest close to the original
EXIF_ORIENTATION = 0x0112


class ImageFileError(ValueError):
    """An image or mask file that cannot be read, or an output path that cannot be written."""

    def __init__(self, path: PathLike | None, reason: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)


class PrecisionWarning(UserWarning):
    """The output format cannot keep everything the image holds (16-bit depth, transparency)."""


# ---------------------------------------------------------------------------------------------------- reading


def read_image(path: PathLike) -> np.ndarray:
    """The pixels of a PNG, JPEG or TIFF file as stored: HxW (grey) or HxWxC (grey+alpha, RGB, RGBA; alpha last),
    uint8 or uint16 as in the file. EXIF orientation is not applied."""
    return read_checked(path)


def read_checked(path: PathLike, check_size: Callable[[int, int], None] | None = None) -> np.ndarray:
    """read_image, with `check_size(width, height)` called on the header's size before any pixel is decoded."""
    path = Path(path)
    header = _read_header(path)
    kind = _sniff_format(path, header)
    try:
        layout = stored_layout(path, header, kind)
        if check_size is not None:  # first: a mask of the wrong size says so, however large it is
            check_size(layout.width, layout.height)
        _check_decoded_size(path, layout)
        if kind == "png" and png_bit_depth(header) == 16:
            return _read_png16(path)
        if kind == "tiff":
            return _read_tiff(path)
        return _read_with_pillow(path)
    except ImageFileError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageFileError(path, f"too large to open safely ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, png.Error) as exc:
        raise ImageFileError(path, f"cannot decode the image ({_reason(exc)})") from None


def has_alpha(image: np.ndarray) -> bool:
    return image.ndim == 3 and image.shape[2] in (2, 4)


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            header = f.read(64)
    except FileNotFoundError:
        raise ImageFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageFileError(path, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageFileError(path, f"cannot open ({_reason(exc)})") from None
    if not header:
        raise ImageFileError(path, "the file is empty")
    return header


def _sniff_format(path: Path, header: bytes) -> str:
    """png, jpeg or tiff from the file's first bytes (the extension may lie); anything else is refused."""
    kind = format_of(header)
    if kind is not None:
        return kind
    try:
        with Image.open(path) as im:
            name = im.format
    except Exception:  # only naming the format for the message: any failure just leaves it unnamed
        name = None
    what = f"a {name} image" if name else "not an image Pillow recognises"
    raise ImageFileError(path, f"unsupported format ({what}): use PNG, JPEG or TIFF")


def _check_decoded_size(path: Path, layout: Layout) -> None:
    """Refuse, from the header alone, an image over the pixel or the byte limit."""
    if layout.pixels > max_pixels():
        over = f"{layout.pixels} pixels, over the {max_pixels()} of Pillow's decompression-bomb guard"
    elif layout.cost > max_decoded_bytes():
        over = (f"{layout.cost >> 20} MB once decoded, over the {max_decoded_bytes() >> 20} MB of the "
                "decompression-bomb guard")
    else:
        return
    raise ImageFileError(path, f"too large to open safely: {layout.width}x{layout.height} ({layout.channels} "
                               f"channels of {8 * layout.sample_bytes} bits) is {over}")


def _read_with_pillow(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        return _pillow_to_array(im, path)


def _pillow_to_array(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        if "transparency" in im.info:  # a tRNS colour key: make it a real alpha channel
            im = im.convert("LA" if mode == "L" else "RGBA")
        return np.array(im)
    if mode in ("1", "La", "RGBa", "RGBX", "YCbCr"):
        return np.array(im.convert({"1": "L", "La": "LA"}.get(mode, "RGBA" if mode == "RGBa" else "RGB")))
    if mode in ("P", "PA"):
        return np.array(im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB"))
    if mode.startswith("I;16") and not mode.endswith("S"):
        return np.array(im).astype(np.uint16)  # to native byte order (I;16B arrives big-endian)
    if mode == "CMYK":
        raise ImageFileError(path, "CMYK images are not supported: convert it to RGB first")
    raise ImageFileError(path, f"unsupported pixel type (Pillow mode {mode}): use 8- or 16-bit grey or colour")


def _read_png16(path: Path) -> np.ndarray:
    width, height, rows, info = png.Reader(filename=str(path)).read()
    planes = info["planes"]
    pixels = np.empty((height, width * planes), dtype=np.uint16)
    for y, row in enumerate(rows):
        pixels[y] = np.frombuffer(row, dtype=np.uint16)
    pixels = pixels.reshape(height, width, planes)
    if "transparent" in info and not info["alpha"]:  # a tRNS colour key: make it a real alpha channel
        key = np.array(info["transparent"], dtype=np.uint16)
        alpha = np.where((pixels == key).all(axis=2), 0, 65535).astype(np.uint16)
        pixels = np.concatenate([pixels, alpha[..., None]], axis=2)
    return pixels[..., 0] if pixels.shape[2] == 1 else pixels


def _read_tiff(path: Path) -> np.ndarray:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        if page.bitspersample <= 8:  # Pillow handles every 8-bit layout: palette, YCbCr, bilevel, LZW, JPEG...
            return _read_with_pillow(path)
        if page.bitspersample != 16 or page.dtype != np.uint16:
            raise ImageFileError(path, f"unsupported sample type ({page.bitspersample}-bit {page.dtype}): "
                                       "use 8- or 16-bit unsigned integers")
        try:
            pixels = page.asarray()
        except ValueError as exc:
            if "imagecodecs" in str(exc) and page.samplesperpixel == 1:
                return _read_with_pillow(path)  # Pillow decodes LZW and holds 16-bit grey exactly
            raise ImageFileError(path, f"cannot decode this 16-bit TIFF ({exc}); install the optional "
                                       "'imagecodecs' package or save it with Deflate or no compression") from None
        return _tiff_page_to_layout(path, page, pixels)


def _tiff_page_to_layout(path: Path, page: tifffile.TiffPage, pixels: np.ndarray) -> np.ndarray:
    if page.axes == "SYX":  # planar configuration: one plane per channel
        pixels = np.moveaxis(pixels, 0, -1)
    elif page.axes not in ("YX", "YXS"):
        raise ImageFileError(path, f"unsupported TIFF layout (axes {page.axes})")
    photometric = int(page.photometric)
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        pixels = 65535 - pixels
    elif photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
        raise ImageFileError(path, f"unsupported 16-bit TIFF colour model ({page.photometric.name})")
    colour = 3 if photometric == tifffile.PHOTOMETRIC.RGB else 1
    extra = pixels.shape[2] - colour if pixels.ndim == 3 else 0
    if extra > 1:
        raise ImageFileError(path, f"{extra} extra channels: only one (alpha) is supported")
    if extra == 1 and page.extrasamples and page.extrasamples[0] == tifffile.EXTRASAMPLE.ASSOCALPHA:
        pixels = _unpremultiply(pixels)
    return np.ascontiguousarray(pixels)


def _unpremultiply(pixels: np.ndarray) -> np.ndarray:
    """Associated (premultiplied) alpha to the straight alpha everything else here uses."""
    alpha = pixels[..., -1:].astype(np.float64)
    colour = pixels[..., :-1] * (65535.0 / np.maximum(alpha, 1.0))
    colour = np.where(alpha > 0, colour, 0.0)
    return np.concatenate([np.clip(np.rint(colour), 0, 65535).astype(np.uint16), pixels[..., -1:]], axis=-1)


# ---------------------------------------------------------------------------------------------------- writing


def output_format(path: PathLike) -> str:
    """png, jpeg or tiff from the output's extension; an unknown one is an error before any work is done."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        known = ", ".join(OUTPUT_FORMATS)
        raise ImageFileError(path, f"unknown output extension {suffix or '(none)'!r}: use one of {known}")
    return OUTPUT_FORMATS[suffix]


def check_writable(path: PathLike) -> None:
    """Fail now, not after the fill, when the output cannot be written at all."""
    path = Path(path)
    output_format(path)
    folder = path.parent
    if not folder.is_dir():
        raise ImageFileError(path, f"the folder {folder} does not exist")
    if path.is_dir():
        raise ImageFileError(path, "is a directory")
    if not _can_write_in(folder):
        raise ImageFileError(path, f"cannot write in the folder {folder}")


def prepare_folder(folder: PathLike) -> Path:
    """The folder outputs go into, made with its parents when missing. Fail now, before the first fill, when it is
    a file, cannot be made, or cannot be written in: a batch must not compute every fill only to lose them all."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ImageFileError(folder, "is a file, not a folder: the results need a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageFileError(folder, f"cannot make the folder ({exc.strerror or _reason(exc)})") from None
    if not _can_write_in(folder):
        raise ImageFileError(folder, "cannot write in this folder (no permission, or a read-only file system)")
    return folder


def _can_write_in(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)  # making a file there needs both


def write_image(path: PathLike, array: np.ndarray, like: PathLike | None = None, quality: int | None = None,
                like_pixels: np.ndarray | None = None) -> None:
    """Write `array` (as `read_image` returns it) in the format of the extension, atomically: the file either
    keeps its old content or has the whole new one. `like` is the source file whose ICC profile and EXIF
    (orientation included) the output keeps. 16-bit is kept in PNG and TIFF; JPEG gets 8 bits and no alpha, with
    a PrecisionWarning when that loses something. JPEG from a JPEG source keeps its untouched blocks
    (daemon/jpeg_blocks.py) unless `quality` asks for a new encoding; when it cannot, a PrecisionWarning says so.
    `like_pixels`: `like` as read_image read it, when the caller has it (saves decoding it again)."""
    path = Path(path)
    kind = output_format(path)
    pixels = _check_pixels(path, array)
    metadata = _metadata_of(like)
    with atomic_path(path) as temporary:
        if kind == "jpeg":
            _write_jpeg(temporary, pixels, metadata, None if like is None else Path(like), quality, like_pixels)
            return
        encode = {"png": _write_png, "tiff": _write_tiff}[kind]
        with temporary.open("wb") as f:
            encode(f, pixels, metadata)


def _check_pixels(path: Path, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise ImageFileError(path, f"cannot write {array.dtype} pixels: uint8 or uint16 only")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ImageFileError(path, f"cannot write an array of shape {array.shape}: HxW or HxWx2/3/4 only")
    return np.ascontiguousarray(array)


def _metadata_of(like: PathLike | None) -> dict:
    """ICC profile and EXIF of the source, when it has them; a source we cannot parse just gives none."""
    if like is None:
        return {}
    try:
        with Image.open(like) as im:
            exif = im.getexif()
            return {"icc": im.info.get("icc_profile"), "exif": exif if len(exif) else None}
    except Exception:  # metadata is a courtesy, never a reason to lose the result
        return {}


def _write_png(f: BinaryIO, pixels: np.ndarray, metadata: dict) -> None:
    if pixels.dtype == np.uint8 or pixels.ndim == 2:  # Pillow holds these exactly (16-bit grey as I;16)
        _pillow_image(pixels).save(f, format="PNG", **_pillow_metadata(metadata))
        return
    height, width, planes = pixels.shape
    writer = png.Writer(width, height, greyscale=planes <= 2, alpha=planes in (2, 4), bitdepth=16)
    buffer = io.BytesIO()
    writer.write(buffer, pixels.reshape(height, width * planes))
    png.write_chunks(f, _with_metadata_chunks(buffer.getvalue(), metadata))


def _with_metadata_chunks(encoded: bytes, metadata: dict) -> list[tuple[bytes, bytes]]:
    """pypng writes no ICC profile or EXIF: add them as iCCP and eXIf chunks right after IHDR."""
    chunks = list(png.Reader(bytes=encoded).chunks())
    extra = []
    if metadata.get("icc"):
        extra.append((b"iCCP", b"ICC profile\x00\x00" + zlib.compress(metadata["icc"])))
    if metadata.get("exif") is not None:
        extra.append((b"eXIf", _exif_bytes(metadata["exif"])))
    return chunks[:1] + extra + chunks[1:]


def _exif_bytes(exif: Image.Exif) -> bytes:
    raw = exif.tobytes()
    return raw[6:] if raw.startswith(b"Exif\x00\x00") else raw  # PNG's eXIf holds the TIFF structure only


def _write_jpeg(path: Path, pixels: np.ndarray, metadata: dict, source: Path | None, quality: int | None,
                source_pixels: np.ndarray | None) -> None:
    if has_alpha(pixels):
        if (pixels[..., -1] < np.iinfo(pixels.dtype).max).any():
            warnings.warn("JPEG has no transparency: the alpha channel is dropped", PrecisionWarning, stacklevel=4)
        pixels = pixels[..., :-1]
        if pixels.shape[2] == 1:
            pixels = pixels[..., 0]
    if pixels.dtype == np.uint16:
        warnings.warn("JPEG holds 8 bits per channel: the 16-bit image is rounded to 8 bits", PrecisionWarning,
                      stacklevel=4)
        pixels = to_8_bit(pixels)
    tables = source_tables(source)
    if tables is not None and quality is None:
        try:
            write_keeping_blocks(path, pixels, source, source_pixels)
            return
        except CannotKeepBlocks as reason:
            warnings.warn(f"the source JPEG's untouched blocks cannot be kept ({reason}): the whole photo is "
                          f"re-encoded with its quantisation tables, so pixels outside the hole may change a little; "
                          f"write .png or .tif for an exact result", PrecisionWarning, stacklevel=4)
    if quality is not None or tables is None:  # a quality asked for, or no source tables: 4:4:4 keeps colour edges
        settings = {"quality": quality or JPEG_QUALITY,
                    "subsampling": tables["subsampling"] if tables and tables["subsampling"] >= 0 else 0}
    else:
        settings = tables
    with path.open("wb") as f:
        _pillow_image(pixels).save(f, format="JPEG", **settings, **_pillow_metadata(metadata))


def to_8_bit(pixels: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit, rounded to nearest (65535 -> 255, 128 -> 0, 129 -> 1)."""
    return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _write_tiff(f: BinaryIO, pixels: np.ndarray, metadata: dict) -> None:
    colour = pixels.ndim == 3 and pixels.shape[2] >= 3
    extratags = []
    exif = metadata.get("exif")
    if exif is not None and exif.get(EXIF_ORIENTATION):
        extratags.append((274, "H", 1, int(exif[EXIF_ORIENTATION]), True))
    tifffile.imwrite(
        f, pixels, photometric="rgb" if colour else "minisblack",
        extrasamples=["unassalpha"] if has_alpha(pixels) else None,
        compression="zlib", predictor=True,  # Deflate: lossless, readable everywhere, no extra codec needed
        iccprofile=metadata.get("icc"), extratags=extratags, metadata=None,
    )


def _pillow_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels)  # modes L, LA, RGB, RGBA and, for 16-bit grey, I;16


def _pillow_metadata(metadata: dict) -> dict:
    options = {}
    if metadata.get("icc"):
        options["icc_profile"] = metadata["icc"]
    if metadata.get("exif") is not None:
        options["exif"] = metadata["exif"]
    return options


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
