"""What the plug-in reads, sends and writes back: rectangles, pixel formats and the hole mask, as plain Python.

No GIMP here, so it is tested on its own; neural_fill.py does the GIMP calls with what these functions decide.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_AUTO_MARGIN = 64  # px of context on each side when the margin is automatic: VGG needs a few relu4 cells
AUTO_MARGIN_FRACTION = 0.5  # automatic margin = this x the selection's larger side (the engine's own context)


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def moved(self, dx: int, dy: int) -> Rect:
        return Rect(self.x + dx, self.y + dy, self.width, self.height)


def context_rect(selection: Rect, layer_width: int, layer_height: int, margin: int = 0) -> Rect:
    """The selection's bounds (layer coordinates) grown by the context margin on each side, clipped to the layer.

    margin 0 = automatic: half the selection's larger side, at least MIN_AUTO_MARGIN, as the engine would take."""
    if margin <= 0:
        margin = max(MIN_AUTO_MARGIN, round(AUTO_MARGIN_FRACTION * max(selection.width, selection.height)))
    left, top = max(0, selection.x - margin), max(0, selection.y - margin)
    right = min(layer_width, selection.right + margin)
    bottom = min(layer_height, selection.bottom + margin)
    return Rect(left, top, right - left, bottom - top)


@dataclass(frozen=True)
class PixelFormat:
    """How the layer's pixels travel: the babl format asked of GEGL and the protocol's name for its samples."""

    babl: str
    sample: str  # protocol sample: u8, u16, f32
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * {"u8": 1, "u16": 2, "f32": 4}[self.sample]


def pixel_format(precision: str, grey: bool) -> PixelFormat:
    """The transfer format for an image precision (Gimp.Precision's nick, e.g. 'u8-non-linear', 'u16-linear',
    'half-linear', 'float-perceptual').

    The engine works on perceptual (gamma-encoded) values, as VGG-19 was trained on, so pixels are always asked
    for in the R'G'B' (or Y') space and GEGL converts from and back to the layer's own. Precision is kept: 8-bit
    perceptual travels as 8 bits; 8-bit linear as 16 bits (8-bit linear -> 8-bit perceptual would band in the
    shadows); 16-bit as 16 bits; 32-bit integer, half and float as 32-bit float. Alpha always travels: a layer
    without one reads as opaque, and transparent pixels are never used as sources by the engine."""
    encoding, _, space = precision.partition("-")
    if encoding == "u8":
        sample = "u8" if space in ("non-linear", "perceptual") else "u16"
    elif encoding == "u16":
        sample = "u16"
    elif encoding in ("u32", "half", "float", "double"):
        sample = "f32"
    else:
        raise ValueError(f"unknown image precision {precision!r}")
    babl_type = {"u8": "u8", "u16": "u16", "f32": "float"}[sample]
    return PixelFormat(f"Y'A {babl_type}" if grey else f"R'G'B'A {babl_type}", sample, 2 if grey else 4)


# Selection value 1..255 -> 255: every pixel the selection touches is part of the hole. The daemon fills it
# completely; GIMP then blends the fill through the selection at its full precision, once, as its own filters do,
# so a feathered edge fades as the user drew it.
_HOLE_TABLE = bytes([0] + [255] * 255)


def hole_mask(selection_u8: bytes) -> bytes:
    """The selection read as 'Y u8' -> the mask sent to the daemon: 255 where the selection touches, 0 elsewhere."""
    return selection_u8.translate(_HOLE_TABLE)


def transparent(data: bytes | memoryview, form: PixelFormat) -> bool:
    """Whether every pixel of a buffer in `form` (alpha last) is fully transparent: an empty layer to heal on."""
    view = memoryview(data).cast("B")
    size = form.bytes_per_pixel // form.channels
    alpha = form.bytes_per_pixel - size
    return not any(any(view[alpha + k::form.bytes_per_pixel]) for k in range(size))


def source_mask(channel_u8: bytes, inside: bool) -> bytes:
    """A channel read as 'Y u8' -> the source mask sent to the daemon: 255 where the fill may copy from. inside:
    copy only where the channel is set (over half); else anywhere it is not."""
    table = bytes(255 if (value > 127) == inside else 0 for value in range(256))
    return channel_u8.translate(table)


def sub_rows(data: bytes | memoryview, outer: Rect, inner: Rect, bytes_per_pixel: int) -> bytes:
    """The bytes of `inner` cut out of a row-major buffer covering `outer` (same coordinate frame)."""
    if not (outer.x <= inner.x and outer.y <= inner.y and inner.right <= outer.right and inner.bottom <= outer.bottom):
        raise ValueError(f"{inner} is not inside {outer}")
    view = memoryview(data)
    stride = outer.width * bytes_per_pixel
    start = (inner.x - outer.x) * bytes_per_pixel
    length = inner.width * bytes_per_pixel
    rows = range(inner.y - outer.y, inner.bottom - outer.y)
    return b"".join(view[row * stride + start: row * stride + start + length] for row in rows)
