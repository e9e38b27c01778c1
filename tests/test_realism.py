"""The no-reference realism of daemon/evaluation/realism.py: real patches score about 1, ghosts and flat blocks
clearly more, and the fill is only ever compared with known pixels."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from PIL import Image

from daemon.evaluation.realism import realism
from engine.hole_masks import centre_hole

DATA = Path(__file__).parent / "data"
SIZE = 128


def two_textures() -> tuple[np.ndarray, np.ndarray]:
    """Grass on the left, brick on the right, and a 48 px hole in the middle over both."""
    grass = np.asarray(Image.open(DATA / "grass.png").convert("RGB"))
    brick = np.asarray(Image.open(DATA / "brick.png").convert("RGB"))
    image = np.concatenate([grass[:SIZE, :SIZE // 2], brick[:SIZE, :SIZE // 2]], axis=1)
    return np.ascontiguousarray(image), centre_hole(SIZE, 48)


def filled(image: np.ndarray, hole: np.ndarray, source: np.ndarray) -> np.ndarray:
    out = image.copy()
    out[hole] = source[hole]
    return out


def test_a_copy_of_known_pixels_scores_about_one_and_a_ghost_or_a_flat_block_clearly_more():
    image, hole = two_textures()
    shifted = np.roll(image, 37, axis=0)  # the same textures, from known rows above and below the hole
    copy = realism(filled(image, hole, shifted), hole)
    ghost_source = (shifted.astype(np.uint16) + np.roll(shifted, SIZE // 2, axis=1)) // 2  # grass over brick
    ghost = realism(filled(image, hole, ghost_source.astype(np.uint8)), hole)
    flat = realism(filled(image, hole, np.full_like(image, image[~hole].mean(axis=0).astype(np.uint8))), hole)
    assert 0.6 < copy < 1.3
    assert ghost > 1.5 * copy
    assert flat > 2 * copy


def test_the_fill_is_compared_with_known_patches_only():
    # A flat block matches itself perfectly: were the hole's own patches candidates, it would score 0.
    image, hole = two_textures()
    flat = filled(image, hole, np.full_like(image, 128))
    assert realism(flat, hole) > 2


def test_no_patch_in_the_hole_or_outside_it_gives_nan():
    image, _ = two_textures()
    assert math.isnan(realism(image, np.zeros((SIZE, SIZE), bool)))
    assert math.isnan(realism(image, np.ones((SIZE, SIZE), bool)))


def test_a_512_crop_takes_under_a_few_hundred_ms():
    rng = np.random.default_rng(0)
    image = np.repeat(np.repeat(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), 4, 0), 4, 1)
    hole = centre_hole(512, 256)
    realism(image, hole)  # warm (BLAS threads)
    start = time.process_time()
    realism(image, hole)
    assert time.process_time() - start < 2.0  # CPU seconds over both cores: ~0.3 s on an idle machine
    assert realism(image, hole) == realism(image.copy(), hole)  # the same input, the same figure
