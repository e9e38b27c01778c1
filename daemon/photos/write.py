"""Writing one photo: a JPEG that needs no change copied byte for byte, anything else as an 8-bit sRGB PNG."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

MAX_SIDE = 2048  # long side of a written photo; training crops are 128-512 px and smaller files load faster


def write_photo(source_file: Path, stem: Path) -> Path:
    """Write source_file as stem.jpg (an RGB sRGB JPEG that needs no change: copied as is) or as stem.png (8-bit
    RGB, sRGB, upright, long side at most MAX_SIDE with LANCZOS). Returns the written path."""
    from PIL import Image, ImageOps

    with Image.open(source_file) as opened:
        orientation = opened.getexif().get(0x0112, 1)
        icc = opened.info.get("icc_profile")
        if (opened.format == "JPEG" and opened.mode == "RGB" and max(opened.size) <= MAX_SIDE
                and orientation == 1 and not _needs_colour_conversion(icc)):
            target = stem.with_suffix(".jpg")
            shutil.copyfile(source_file, target)
            return target
        picture = ImageOps.exif_transpose(opened)
        picture = _to_rgb(picture)
        if _needs_colour_conversion(icc):
            picture = _to_srgb(picture, icc)
    if max(picture.size) > MAX_SIDE:
        scale = MAX_SIDE / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    target = stem.with_suffix(".png")
    picture.save(target, format="PNG")
    return target


def _to_rgb(picture):
    from PIL import Image

    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        values = np.asarray(picture, dtype=np.uint32)
        peak = 65535 if picture.mode.startswith("I;16") or values.max() > 255 else 255
        picture = Image.fromarray((values * 255 // peak).astype(np.uint8), "L")
    return picture.convert("RGB")  # drops alpha: the reviewed photos' alpha is opaque


def _needs_colour_conversion(icc: bytes | None) -> bool:
    if not icc:
        return False
    description = _profile_description(icc)
    return description is not None and "srgb" not in description.lower()


def _profile_description(icc: bytes) -> str | None:
    try:
        from PIL import ImageCms

        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except Exception:  # an unreadable profile is treated as sRGB
        return None


def _to_srgb(picture, icc: bytes):
    from PIL import ImageCms

    try:
        return ImageCms.profileToProfile(picture, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                         ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # a profile that does not apply (grey profile on RGB...): keep the pixels
        return picture
