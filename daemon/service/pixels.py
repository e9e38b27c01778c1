"""Pixel frames <-> numpy arrays: the protocol's raw little-endian samples on one side, the engine's arrays on the
other. Kept apart from protocol.py, which the GIMP plug-in imports without numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import ImageError

from .protocol import FillRequest

# Wire sample names to little-endian dtypes; arrays handed to the engine use the native byte order.
WIRE_DTYPES = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f32": np.dtype("<f4")}
NATIVE_DTYPES = {"u8": np.dtype(np.uint8), "u16": np.dtype(np.uint16), "f32": np.dtype(np.float32)}


@dataclass(frozen=True)
class Frame:
    """An array as the protocol carries it: raw bytes plus the header fields that describe them."""

    data: bytes | memoryview
    width: int
    height: int
    channels: int
    sample: str


def sample_name(dtype: np.dtype) -> str:
    for name, native in NATIVE_DTYPES.items():
        if np.dtype(dtype).kind == native.kind and np.dtype(dtype).itemsize == native.itemsize:
            return name
    raise ImageError(f"unsupported sample type {dtype}: use uint8, uint16 or float32")


def from_bytes(data: bytes | memoryview, height: int, width: int, channels: int, sample: str,
               writable: bool = True) -> np.ndarray:
    """Raw samples -> a native-order HxW (one channel) or HxWxC array. With writable=False the array is a
    read-only view of `data` where the byte order allows (the daemon's inputs: the engine only reads them, and
    a 100-megapixel image is not copied)."""
    array = np.frombuffer(data, dtype=WIRE_DTYPES[sample]).astype(NATIVE_DTYPES[sample], copy=writable)
    return array.reshape((height, width) if channels == 1 else (height, width, channels))


def to_frame(array: np.ndarray) -> Frame:
    """HxW or HxWxC uint8/uint16/float32 -> its frame (little-endian, row-major, channels interleaved)."""
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise ImageError(f"unsupported image shape {array.shape}: expected HxW or HxWxC")
    sample = sample_name(array.dtype)
    channels = 1 if array.ndim == 2 else array.shape[2]
    # A view of the (contiguous, little-endian) samples, not a copy: ZeroMQ sends straight from it.
    data = memoryview(np.ascontiguousarray(array, dtype=WIRE_DTYPES[sample])).cast("B")
    return Frame(data, array.shape[1], array.shape[0], channels, sample)


def mask_to_frame(mask: np.ndarray) -> Frame:
    """A mask in any form the engine takes (bool, uint8, uint16, float) -> a one-channel frame."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.dtype == bool:
        mask = mask.astype(np.uint8) * 255
    elif np.issubdtype(mask.dtype, np.floating):
        mask = mask.astype(np.float32)
    return to_frame(mask)


def request_image(request: FillRequest) -> np.ndarray:
    return from_bytes(request.pixels, request.height, request.width, request.channels, request.sample,
                      writable=False)


def request_mask(request: FillRequest) -> np.ndarray:
    return from_bytes(request.mask, request.height, request.width, 1, request.mask_sample, writable=False)


def request_source(request: FillRequest) -> np.ndarray | None:
    """Where the fill may copy from (the engine's `source`), or None when the request has no source mask."""
    if request.source_sample is None:
        return None
    return from_bytes(request.source, request.height, request.width, 1, request.source_sample, writable=False)
