"""The `neural-fill fill` command end to end: a real process, real weights, real files."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from daemon.files import read_image, write_image
from tests.support.images import centre_mask, stripes

pytestmark = pytest.mark.weights
REPO = Path(__file__).resolve().parents[1]


def neural_fill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)


def test_a_sixteen_bit_tiff_is_filled_in_a_real_process(tmp_path):
    image = stripes(128, 128, period=12).astype(np.uint16) * 257 + 7
    mask = centre_mask(128, 128, 40)
    write_image(tmp_path / "in.tif", image)
    write_image(tmp_path / "mask.png", mask)
    done = neural_fill("fill", tmp_path / "in.tif", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out.tif",
                       "--preset", "preview", "--seed", "3", "--verbose")
    assert done.returncode == 0, done.stderr
    assert "texture match" in done.stderr and "preset preview" in done.stderr
    assert re.search(r"precision (float32|bfloat16)", done.stderr)
    result = read_image(tmp_path / "out.tif")
    assert result.dtype == np.uint16 and result.shape == image.shape
    assert np.array_equal(result[mask == 0], image[mask == 0])
    assert not np.array_equal(result[mask > 0], image[mask > 0] * 0)


def test_a_bad_mask_leaves_no_output_and_says_why(tmp_path):
    write_image(tmp_path / "in.png", stripes(64, 64))
    write_image(tmp_path / "mask.png", np.zeros((64, 64), np.uint8))
    done = neural_fill("fill", tmp_path / "in.png", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out.png")
    assert done.returncode == 2
    assert "neural-fill: error:" in done.stderr and "nothing" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "mask.png"]  # no output, no temp file
