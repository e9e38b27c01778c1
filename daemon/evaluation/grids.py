"""Comparison grids of a `neural-fill eval` run: one row per sample, the input, each method's fill, the original."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.atomic import atomic_path

if TYPE_CHECKING:
    from .samples import Sample  # a type only: pairs.py scores without the engine that samples.py imports

CHECKER = 8  # px squares of the checkerboard that shows the hole
MIN_TILE = 256  # small crops are shown enlarged (nearest neighbour) to at least this


def with_checker(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[:hole.shape[0], :hole.shape[1]]
    checker = np.where(((y // CHECKER + x // CHECKER) % 2 == 0), 200, 150).astype(np.uint8)
    out = image.copy()
    out[hole] = checker[hole][:, None]
    return out


def write_grid(path: Path, sample: Sample, outputs: dict[str, np.ndarray | None]) -> None:
    """One row: input with the hole as a checkerboard, each method's result, the original; captions on top."""
    columns = [("input", with_checker(sample.image, sample.hole)), *outputs.items(), ("original", sample.image)]
    size = sample.image.shape[0]
    factor = max(1, MIN_TILE // size)
    tile = size * factor
    font = caption_font(13)
    gap = 4
    captions = [_caption_lines(name, font, tile) for name, _ in columns]
    line_height = 16
    caption_height = line_height * max(len(lines) for lines in captions) + 6
    grid = Image.new("RGB", (len(columns) * (tile + gap) - gap, caption_height + tile), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for index, ((_, image), lines) in enumerate(zip(columns, captions, strict=True)):
        left = index * (tile + gap)
        for number, line in enumerate(lines):
            draw.text((left + 2, 3 + number * line_height), line, fill=(0, 0, 0), font=font)
        if image is None:
            block = Image.new("RGB", (tile, tile), (60, 0, 0))
            ImageDraw.Draw(block).text((8, tile // 2), "failed", fill=(255, 255, 255), font=font)
        else:
            block = Image.fromarray(image).resize((tile, tile), Image.Resampling.NEAREST)
        grid.paste(block, (left, caption_height))
    with atomic_path(path) as temporary:
        grid.save(temporary, format="PNG")


def caption_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _caption_lines(name: str, font: Any, width: int) -> list[str]:
    """The column name split at ':' into lines, each shortened with '...' to fit."""
    lines = []
    for part in name.split(":"):
        if draw_width(part, font) <= width - 4:
            lines.append(part)
            continue
        text = part
        while text and draw_width(text + "...", font) > width - 4:
            text = text[:-1]
        lines.append(text + "...")
    return lines


def draw_width(text: str, font: Any) -> float:
    return float(font.getlength(text)) if hasattr(font, "getlength") else 6.0 * len(text)
