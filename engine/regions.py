"""Where to work: one crop around each hole with context, merged where crops overlap.

Cost follows the holes: a 4000x3000 photo with one small hole is worked on as one small crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MIN_CROP = 128  # smallest crop side (when the image allows): VGG needs room for a few relu4 cells of context


@dataclass(frozen=True)
class Box:
    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def overlaps(self, other: Box) -> bool:
        return (self.top < other.bottom and other.top < self.bottom
                and self.left < other.right and other.left < self.right)

    def union(self, other: Box) -> Box:
        return Box(min(self.top, other.top), min(self.left, other.left),
                   max(self.bottom, other.bottom), max(self.right, other.right))


def hole_boxes(hole: np.ndarray) -> list[Box]:
    """Bounding boxes of the connected parts of a boolean hole mask (8-connected)."""
    labels, _ = ndimage.label(hole, structure=np.ones((3, 3), dtype=bool))
    return [Box(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in ndimage.find_objects(labels) if s]


def context_box(hole: Box, image_height: int, image_width: int, context: float, min_context: int) -> Box:
    """The hole's box grown by `context` x its larger side on each side (at least `min_context` px, and to at
    least MIN_CROP per side), shifted back inside the image where it sticks out."""
    margin = max(min_context, int(round(context * max(hole.height, hole.width))))
    height = min(image_height, max(hole.height + 2 * margin, MIN_CROP))
    width = min(image_width, max(hole.width + 2 * margin, MIN_CROP))
    top = _place(hole.top, hole.height, height, image_height)
    left = _place(hole.left, hole.width, width, image_width)
    return Box(top, left, top + height, left + width)


def _place(start: int, length: int, span: int, limit: int) -> int:
    centred = start - (span - length) // 2
    return min(max(0, centred), limit - span)


def crop_boxes(hole: np.ndarray, context: float, min_context: int) -> list[Box]:
    """One crop per group of holes; holes whose crops overlap are grouped and given one crop around them all."""
    height, width = hole.shape
    groups = [(box, context_box(box, height, width, context, min_context)) for box in hole_boxes(hole)]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if groups[i][1].overlaps(groups[j][1]):
                    holes = groups[i][0].union(groups[j][0])
                    groups[i] = (holes, context_box(holes, height, width, context, min_context))
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return [crop for _, crop in groups]
