"""Test samples for `neural-fill eval`: the mask settings, and how a photo becomes seeded crops with a hole.

The methods see a sample's hole as grey (`Sample.given`), never its true pixels.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.hole_masks import centre_hole, free_form_hole, object_hole

from .settings import MaskSetting

HOLE_GREY = 128  # what the methods see in the hole instead of the true pixels


@dataclass
class Sample:
    """One test case: a crop of a photo and its hole."""

    source: str  # the photo's path relative to the data folder
    number: int  # the crop's number within the photo (0 when one crop per photo)
    image: np.ndarray  # uint8 HxWx3, the original crop
    hole: np.ndarray  # bool HxW
    scale: float  # the photo was scaled by this before cropping
    top: int  # the crop's position in the scaled photo
    left: int

    @property
    def label(self) -> str:
        return self.source if self.number == 0 else f"{self.source}#{self.number}"

    def given(self) -> np.ndarray:
        """What the methods see: the crop with its hole grey."""
        image = self.image.copy()
        image[self.hole] = HOLE_GREY
        return image


def scale_for_setting(photo: np.ndarray, setting: MaskSetting) -> tuple[np.ndarray, float]:
    height, width = photo.shape[:2]
    short = min(height, width)
    target = max(min(short, setting.short_side), setting.crop)
    if target == short:
        return photo, 1.0
    scale = target / short
    size = (target, max(target, round(width * scale))) if height <= width else \
        (max(target, round(height * scale)), target)
    resized = Image.fromarray(photo).resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(resized), scale


def make_samples(photo: np.ndarray, source: str, setting: MaskSetting, seed: int, crops: int = 1) -> list[Sample]:
    """`crops` samples of one photo. Each draws from its own generator seeded by (seed, photo path, crop number),
    so a photo gets the same crops and holes whatever else is in the folder or --limit."""
    scaled, scale = scale_for_setting(photo, setting)
    height, width = scaled.shape[:2]
    samples = []
    for number in range(crops):
        rng = np.random.default_rng([seed, zlib.crc32(source.encode()), number])
        top = int(rng.integers(0, height - setting.crop + 1))
        left = int(rng.integers(0, width - setting.crop + 1))
        crop = np.ascontiguousarray(scaled[top:top + setting.crop, left:left + setting.crop])
        if setting.hole == "centre":
            hole = centre_hole(setting.crop, setting.hole_side)
        elif setting.hole == "strokes":
            hole = free_form_hole(setting.crop, rng, setting.coverage)
        else:
            hole = object_hole(setting.crop, rng, setting.coverage, setting.margin)
        samples.append(Sample(source, number, crop, hole, scale, top, left))
    return samples
