"""A JPEG result of a JPEG source keeps every 8x8 block the hole does not touch exactly as it was stored, checked
block by block on a real camera JPEG (tests/data/church-fz30.jpg: a lossless cut of a Panasonic DMC-FZ30 photo,
4:2:0, the camera's own tables, EXIF and ICC profile) and on the layouts other encoders write."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import jpeglib
import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from daemon.cli.main import main
from daemon.files import PrecisionWarning, read_image, write_image
from daemon.jpeg_blocks import COMPONENTS
from tests.support.images import noisy_photo

CAMERA_JPEG = Path(__file__).parent / "data" / "church-fz30.jpg"


def ellipse(height: int, width: int, centre: tuple[int, int], radii: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[:height, :width]
    return ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1


def painted(pixels: np.ndarray, hole: np.ndarray, seed: int = 0) -> np.ndarray:
    """What a fill hands back: the source's pixels outside the hole, new ones inside (a red with fine grain)."""
    out = pixels.copy()
    red = np.array([200, 40, 40])[: 1 if out.ndim == 2 else 3]
    grain = np.random.default_rng(seed).normal(0, 6, out[hole].shape)
    out[hole] = np.clip(red.reshape((-1,) if out.ndim == 2 else (1, 3)) + grain, 0, 255).astype(np.uint8)
    return out


def touched_blocks(hole: np.ndarray, stored, number: int) -> np.ndarray:
    """Which blocks of component `number` cover a hole pixel, from the file's sampling factors."""
    sampling = np.asarray(stored.samp_factor)
    step_y = 8 * sampling[:, 0].max() // sampling[number, 0]
    step_x = 8 * sampling[:, 1].max() // sampling[number, 1]
    rows, cols = getattr(stored, COMPONENTS[number]).shape[:2]
    padded = np.zeros((rows * step_y, cols * step_x), bool)
    padded[:hole.shape[0], :hole.shape[1]] = hole
    return padded.reshape(rows, step_y, cols, step_x).any(axis=(1, 3))


def assert_untouched_blocks_kept(source: Path, result: Path, hole: np.ndarray) -> None:
    before, after = jpeglib.read_dct(str(source)), jpeglib.read_dct(str(result))
    assert np.array_equal(before.qt, after.qt) and np.array_equal(before.samp_factor, after.samp_factor)
    for number in range(before.num_components):
        name = COMPONENTS[number]
        old, new = getattr(before, name), getattr(after, name)
        touched = touched_blocks(hole, before, number)
        assert 0 < touched.sum() < touched.size
        assert np.array_equal(old[~touched], new[~touched]), f"{name}: a block the hole does not touch changed"
        assert not np.array_equal(old[touched], new[touched]), f"{name}: the hole's blocks were not re-encoded"


def assert_decoded_pixels_kept(source: Path, result: Path, hole: np.ndarray) -> None:
    """Decoded, the pixels are the source's everywhere but in the hole's MCUs and, where chroma is subsampled, the
    one pixel beside them that the decoder's smooth chroma upsampling blends in."""
    stored = jpeglib.read_dct(str(source))
    sampling = np.asarray(stored.samp_factor)
    mcu_h, mcu_w = 8 * sampling[:, 0].max(), 8 * sampling[:, 1].max()
    luma = touched_blocks(hole, stored, 0) if stored.num_components == 1 else None
    height, width = hole.shape
    near = np.zeros_like(hole)
    rows, cols = np.nonzero(hole)
    for row, col in set(zip(rows // mcu_h, cols // mcu_w, strict=True)):
        margin_y, margin_x = int(sampling[:, 0].max() > 1), int(sampling[:, 1].max() > 1)
        near[max(0, row * mcu_h - margin_y):(row + 1) * mcu_h + margin_y,
             max(0, col * mcu_w - margin_x):(col + 1) * mcu_w + margin_x] = True
    assert luma is None or luma.any()
    before, after = read_image(source), read_image(result)
    assert after.shape == before.shape
    assert np.array_equal(before[~near], after[~near])
    assert near.sum() < 0.5 * height * width


def test_a_real_camera_jpeg_keeps_every_block_the_hole_does_not_touch(tmp_path):
    source = tmp_path / "church.jpg"
    shutil.copy(CAMERA_JPEG, source)
    pixels = read_image(source)
    hole = ellipse(*pixels.shape[:2], centre=(120, 170), radii=(37, 51))
    filled = painted(pixels, hole)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: nothing known is lost
        write_image(tmp_path / "out.jpg", filled, like=source)
    assert_untouched_blocks_kept(source, tmp_path / "out.jpg", hole)
    assert_decoded_pixels_kept(source, tmp_path / "out.jpg", hole)
    back = read_image(tmp_path / "out.jpg").astype(int)
    assert np.abs(back[hole] - filled[hole]).mean() < 8  # the new pixels are there, at the camera's quality
    with Image.open(source) as im, Image.open(tmp_path / "out.jpg") as out:
        assert out.getexif().get(0x0110) == im.getexif().get(0x0110) == "DMC-FZ30"
        assert out.info["icc_profile"] == im.info["icc_profile"]
        assert out.quantization == im.quantization
        assert JpegImagePlugin.get_sampling(out) == JpegImagePlugin.get_sampling(im) == 2


LAYOUTS = {  # what other cameras and editors write: Pillow's save arguments, and the size
    "4:4:4": ({"subsampling": 0, "quality": 90}, (61, 75)),
    "4:2:2": ({"subsampling": 1, "quality": 85}, (64, 80)),
    "4:2:0 progressive, odd size": ({"subsampling": 2, "quality": 92, "progressive": True}, (67, 93)),
    "grey": ({"quality": 80}, (50, 70)),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_jpeg_layout_keeps_its_untouched_blocks(tmp_path, layout):
    settings, (height, width) = LAYOUTS[layout]
    pixels = noisy_photo(height, width, seed=3)
    if layout == "grey":
        pixels = pixels[..., 1]
    source = tmp_path / "source.jpg"
    Image.fromarray(pixels).save(source, **settings)
    known = read_image(source)
    hole = ellipse(height, width, centre=(height // 2, width // 2 + 5), radii=(9, 13))
    write_image(tmp_path / "out.jpg", painted(known, hole), like=source)
    assert_untouched_blocks_kept(source, tmp_path / "out.jpg", hole)
    assert_decoded_pixels_kept(source, tmp_path / "out.jpg", hole)


def test_a_result_equal_to_its_source_is_its_source_block_for_block(tmp_path):
    write_image(tmp_path / "out.jpg", read_image(CAMERA_JPEG), like=CAMERA_JPEG)
    before, after = jpeglib.read_dct(str(CAMERA_JPEG)), jpeglib.read_dct(str(tmp_path / "out.jpg"))
    assert all(np.array_equal(getattr(before, name), getattr(after, name)) for name in COMPONENTS)


def test_a_quality_asked_for_encodes_the_whole_photo_anew_without_a_warning(tmp_path):
    pixels = read_image(CAMERA_JPEG)
    hole = ellipse(*pixels.shape[:2], centre=(100, 100), radii=(20, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / "out.jpg", painted(pixels, hole), like=CAMERA_JPEG, quality=60)
    with Image.open(CAMERA_JPEG) as im, Image.open(tmp_path / "out.jpg") as out:
        assert out.quantization[0][0] > im.quantization[0][0]  # coarser tables: quality 60, not the camera's ~97
        assert JpegImagePlugin.get_sampling(out) == JpegImagePlugin.get_sampling(im)
    assert np.abs(read_image(tmp_path / "out.jpg")[~hole].astype(int) - pixels[~hole]).max() > 0


def test_when_the_blocks_cannot_be_kept_it_warns_and_keeps_the_sources_tables(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "jpeglib", None)  # as on a platform without jpeglib's wheel
    pixels = read_image(CAMERA_JPEG)
    hole = ellipse(*pixels.shape[:2], centre=(100, 100), radii=(20, 20))
    with pytest.warns(PrecisionWarning, match=r"jpeglib package is not installed.*write \.png or \.tif"):
        write_image(tmp_path / "out.jpg", painted(pixels, hole), like=CAMERA_JPEG)
    with Image.open(CAMERA_JPEG) as im, Image.open(tmp_path / "out.jpg") as out:
        assert out.quantization == im.quantization
        assert JpegImagePlugin.get_sampling(out) == JpegImagePlugin.get_sampling(im)
        assert out.getexif().get(0x0110) == "DMC-FZ30"


def test_a_png_source_to_jpeg_is_written_without_a_warning(tmp_path):
    pixels = noisy_photo(32, 40)
    write_image(tmp_path / "source.png", pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / "out.jpg", pixels, like=tmp_path / "source.png")
    with Image.open(tmp_path / "out.jpg") as out:
        assert JpegImagePlugin.get_sampling(out) == 0  # 4:4:4: a retouch keeps its colour edges


# ------------------------------------------------------------------------------------ through the command line

REAL_FILL = ["--preset", "preview", "--set", "scales=1", "--set", "iterations=2", "--set", "threads=2", "-q"]


def camera_jpeg_and_hole(images: Path, masks: Path, name: str = "church") -> tuple[Path, np.ndarray]:
    """The camera JPEG in `images` and a mask of an elliptical hole in `masks`, both named `name`."""
    for folder in (images, masks):
        folder.mkdir(parents=True, exist_ok=True)
    source = images / f"{name}.jpg"
    shutil.copy(CAMERA_JPEG, source)
    height, width = read_image(source).shape[:2]
    hole = ellipse(height, width, centre=(150, 120), radii=(30, 24))
    write_image(masks / f"{name}.png", hole.astype(np.uint8) * 255)
    return source, hole


@pytest.mark.weights
def test_a_real_fill_of_a_camera_jpeg_keeps_its_untouched_blocks(tmp_path, capsys):
    source, hole = camera_jpeg_and_hole(tmp_path, tmp_path, "church")
    assert main(["fill", str(source), "-m", str(tmp_path / "church.png"), "-o", str(tmp_path / "out.jpg"),
                 *REAL_FILL]) == 0
    assert "warning" not in capsys.readouterr().err
    assert_untouched_blocks_kept(source, tmp_path / "out.jpg", hole)
    assert_decoded_pixels_kept(source, tmp_path / "out.jpg", hole)


@pytest.mark.weights
def test_a_batch_that_cannot_keep_blocks_warns_once_not_once_per_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "jpeglib", None)
    for number in range(3):
        camera_jpeg_and_hole(tmp_path / "images", tmp_path / "masks", f"church{number}")
    assert main(["batch", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
                 "-o", str(tmp_path / "out"), *REAL_FILL]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "cannot be kept" in warned[0] and ".png or .tif" in warned[0], warned
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["church0.jpg", "church1.jpg", "church2.jpg"]


def test_the_callers_decoded_source_gives_the_same_file_as_decoding_it_again(tmp_path):
    pixels = read_image(CAMERA_JPEG)
    filled = painted(pixels, ellipse(*pixels.shape[:2], centre=(60, 200), radii=(25, 30)))
    write_image(tmp_path / "decoded-here.jpg", filled, like=CAMERA_JPEG)
    write_image(tmp_path / "given.jpg", filled, like=CAMERA_JPEG, like_pixels=pixels)
    assert (tmp_path / "decoded-here.jpg").read_bytes() == (tmp_path / "given.jpg").read_bytes()
