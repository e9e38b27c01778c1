"""What an image file holds, read from its first bytes before any pixel is decoded: its format, its size and the
layout read_image will give it; and what decoding may cost, for the decompression-bomb guard (daemon/files.py)."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import NamedTuple

import tifffile
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders

# Bytes per pixel held beside the decoded samples, for the whole image: the float32 hole (read_mask, the engine's
# mask). The photo itself becomes floats one crop at a time.
HELD_PER_PIXEL = 4


class Layout(NamedTuple):
    """The array read_image gives: width, height, channels, bytes per sample."""

    width: int
    height: int
    channels: int
    sample_bytes: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def cost(self) -> int:
        """Bytes held once decoded: the samples and HELD_PER_PIXEL."""
        return self.pixels * (self.channels * self.sample_bytes + HELD_PER_PIXEL)


def format_of(header: bytes) -> str | None:
    """png, jpeg or tiff from the file's first bytes (the extension may lie); None for anything else."""
    if header.startswith(PNG_SIGNATURE):
        return "png"
    if header.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if header.startswith(TIFF_SIGNATURES):
        return "tiff"
    return None


def max_pixels() -> int:
    """The most pixels a file may hold: what Pillow's decompression-bomb guard lets through, for every reader."""
    return 2 * (Image.MAX_IMAGE_PIXELS or 1 << 62)


def max_decoded_bytes() -> int:
    """The most a file may cost once decoded (Layout.cost): Pillow's pixel limit, as 8-bit RGB. Pillow counts
    pixels, but a 16-bit RGBA pixel costs what two 8-bit ones do: a 2 MB PNG of 13000x13000 16-bit zeros passes a
    pixel count and then takes gigabytes and a minute and more."""
    return max_pixels() * (3 + HELD_PER_PIXEL)


def stored_layout(path: Path, header: bytes, kind: str) -> Layout:
    """The layout of `path` (of format `kind`, its first bytes `header`) as read_image will return it."""
    if kind == "png":
        if header[12:16] != b"IHDR":
            raise ValueError("a PNG must start with its IHDR chunk")
        width, height, depth, colour = struct.unpack(">IIBB", header[16:26])
        channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour, 4)
        if colour in (0, 2, 3) and _png_has_transparency(path):  # read as a real alpha channel
            channels += 1
        return Layout(width, height, channels, 2 if depth == 16 else 1)
    if kind == "tiff":
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            palette = page.photometric == tifffile.PHOTOMETRIC.PALETTE  # Pillow reads it as RGB
            return Layout(int(page.imagewidth), int(page.imagelength), 3 if palette else int(page.samplesperpixel),
                          (int(page.bitspersample) + 7) // 8)
    with warnings.catch_warnings(), Image.open(path) as im:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Layout(*im.size, len(im.getbands()), 1)  # a JPEG: 8-bit samples


def png_bit_depth(header: bytes) -> int:
    # IHDR is always the first chunk: signature (8) + length (4) + "IHDR" (4) + width (4) + height (4) + depth (1).
    return header[24] if len(header) > 24 and header[12:16] == b"IHDR" else 0


def _png_has_transparency(path: Path) -> bool:
    """Whether a tRNS chunk comes before the pixel data: only the chunks' 8-byte heads are read."""
    with path.open("rb") as f:
        f.seek(len(PNG_SIGNATURE))
        while len(head := f.read(8)) == 8:
            length, name = struct.unpack(">I4s", head)
            if name in (b"tRNS", b"IDAT"):
                return name == b"tRNS"
            f.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return False
