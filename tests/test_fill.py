"""fill() as a whole, with a random-weights VGG: masks, sample types, crops, progress, cancel, determinism, errors.

These tests are about what happens around the synthesis; tests/test_method.py runs the real weights.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import engine.pipeline
from engine import Cancelled, ImageError, MaskError, fill, get_preset
from tests.support.images import centre_mask, noisy_photo

FAST = get_preset("preview", working_size=128, iterations=(3, 2))
MAGENTA = np.array([255, 0, 255], np.uint8)


def with_magenta_hole(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object to remove: a colour found nowhere else, so any trace of it in the result shows."""
    image = image.copy()
    full_scale = 1.0 if image.dtype == np.float32 else np.iinfo(image.dtype).max  # float: 0..1, not 0..65535
    image[mask > 0, :3] = MAGENTA.astype(np.float64) / 255 * full_scale
    return image


@pytest.mark.parametrize("layout", ["rgb8", "rgb16", "rgba8", "grey8", "greyalpha16", "rgbfloat"])
def test_known_pixels_come_back_bit_identical_and_the_hole_changes(random_vgg, layout):
    photo = noisy_photo(96, 112)
    if layout == "rgb16":
        photo = photo.astype(np.uint16) * 257 + 123
    elif layout == "rgba8":
        photo = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    elif layout == "grey8":
        photo = photo[..., 0]
    elif layout == "greyalpha16":
        photo = np.dstack([photo[..., 0], photo[..., 1]]).astype(np.uint16) * 257
    elif layout == "rgbfloat":
        photo = photo.astype(np.float32) / 255
    mask = centre_mask(96, 112, 32)
    result = fill(photo, mask, FAST)
    assert result.shape == photo.shape and result.dtype == photo.dtype
    assert np.array_equal(result[mask == 0], photo[mask == 0])
    if photo.ndim == 3 and photo.shape[2] >= 3:
        magenta_in = with_magenta_hole(photo, mask)
        out = fill(magenta_in, mask, FAST)
        assert np.array_equal(out[mask == 0], magenta_in[mask == 0])
        scale = 1.0 if out.dtype == np.float32 else float(np.iinfo(out.dtype).max)
        hole = out[mask > 0, :3].astype(np.float64) / scale
        magenta = MAGENTA / 255.0
        # Nothing of the removed object survives: no hole pixel is near magenta.
        assert np.abs(hole - magenta).max(axis=1).min() > 0.2


def test_sixteen_bit_keeps_its_precision(random_vgg):
    y, x = np.mgrid[:96, :96]
    photo = np.stack([x * 300 + y * 20, y * 400, (x + y) * 150], -1).astype(np.uint16)
    mask = centre_mask(96, 96, 24)
    result = fill(photo, mask, FAST)
    hole = result[mask > 0]
    assert (hole % 257 != 0).mean() > 0.9  # not 8-bit values scaled up


def test_alpha_outside_is_kept_and_continues_into_the_hole(random_vgg):
    photo = np.dstack([noisy_photo(96, 96), np.full((96, 96), 255, np.uint8)])
    photo[:, :20, 3] = 90  # a partly transparent band far from the hole
    mask = centre_mask(96, 96, 24)
    result = fill(photo, mask, FAST)
    assert np.array_equal(result[..., 3][mask == 0], photo[..., 3][mask == 0])
    assert (result[..., 3][mask > 0] == 255).all()


def test_soft_mask_blends_between_original_and_fill(random_vgg):
    photo = with_magenta_hole(noisy_photo(96, 96), centre_mask(96, 96, 30))
    y, x = np.mgrid[:96, :96]
    distance = np.maximum(abs(y - 47.5), abs(x - 47.5))
    soft = np.clip((24 - distance) / 8, 0, 1).astype(np.float32)  # 1 inside, ramp to 0 over 8 px
    hard = fill(photo, soft > 0, FAST).astype(np.float32)
    blended = fill(photo, soft, FAST).astype(np.float32)
    expected = photo * (1 - soft[..., None]) + hard * soft[..., None]
    assert np.abs(blended - expected).max() <= 1.0
    ramp = (soft > 0.2) & (soft < 0.8)
    assert np.abs(blended[ramp] - photo[ramp]).mean() > 1  # the ramp really mixes


def test_several_holes_are_each_filled_on_their_own_crop(random_vgg):
    photo = noisy_photo(400, 400)
    mask = np.zeros((400, 400), np.uint8)
    mask[40:70, 40:70] = 255
    mask[320:350, 300:340] = 255
    photo = with_magenta_hole(photo, mask)
    events = []
    result = fill(photo, mask, FAST, progress=events.append)
    assert max(e.regions for e in events) == 2
    assert np.array_equal(result[mask == 0], photo[mask == 0])
    assert np.abs(result[mask > 0].astype(int) - MAGENTA).max(axis=1).min() > 50


def test_a_big_photo_costs_what_a_small_one_with_the_same_hole_costs(random_vgg, monkeypatch):
    seen = []
    original = engine.pipeline.CropSynthesis.run

    def recording(self, image, hole, excluded, want_match, **scale):
        seen.append(tuple(image.shape))
        return original(self, image, hole, excluded, want_match, **scale)

    monkeypatch.setattr(engine.pipeline.CropSynthesis, "run", recording)
    small, large = noisy_photo(160, 160), noisy_photo(1500, 2000)
    small_mask, large_mask = centre_mask(160, 160, 40), np.zeros((1500, 2000), np.uint8)
    large_mask[700:740, 1200:1240] = 255
    fill(small, small_mask, FAST)
    fill(large, large_mask, FAST)
    assert seen[0] == seen[1]


def test_a_hole_bigger_than_the_working_size_gets_native_detail_back(random_vgg):
    photo = noisy_photo(512, 512)
    mask = centre_mask(512, 512, 256)
    options = get_preset("preview", working_size=128, iterations=(2, 2))

    def roughness(image):  # mean absolute Laplacian: fine detail
        grey = image.astype(np.float32).mean(axis=2)
        lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
        return np.abs(lap)[mask[1:-1, 1:-1] > 0].mean()

    plain = fill(photo, mask, options.replace(detail_transfer=False))
    detailed = fill(photo, mask, options)
    assert roughness(detailed) > 2.5 * roughness(plain)
    assert roughness(detailed) > 0.5 * roughness(photo)


@pytest.mark.parametrize("content, completion, scales", [
    ("patches", False, 2), ("network", False, 1),  # the network's pyramid starts at 128
    ("network", True, 2)])  # the completion's: 64 and 128 px
def test_progress_is_monotone_and_says_where_it_is(random_vgg, content, completion, scales):
    events = []
    fill(noisy_photo(128, 128), centre_mask(128, 128, 40), FAST.replace(content=content, completion=completion),
         progress=events.append)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    synthesis = [e for e in events if e.stage == "synthesis"]
    assert {e.scale for e in synthesis} == set(range(1, scales + 1))
    assert {e.scales for e in synthesis} == {scales}
    assert all(1 <= e.iteration <= e.iterations for e in synthesis)
    assert events[-1].stage == "done"


def test_a_thin_hole_in_a_small_crop_skips_the_finest_neural_copying_that_the_copying_from_beside_covers(
        random_vgg):
    # Measured on strokes: copying along neural matches at the finest scale only leaves soft streaks where the last
    # copying from beside the hole reaches every pixel anyway (docs/quality.md).
    image = noisy_photo(256, 256)
    thin = np.zeros((256, 256), np.uint8)
    thin[40:220, 120:130] = 255

    def finest_scale_rounds(mask: np.ndarray) -> list:
        events = []
        result = fill(image, mask, get_preset("preview", content="patches", completion=False),
                      progress=events.append)  # 2 scales
        assert np.array_equal(result[mask == 0], image[mask == 0])
        return [e for e in events if e.stage == "synthesis" and e.scale == e.scales]

    assert finest_scale_rounds(thin) == []
    assert finest_scale_rounds(centre_mask(256, 256, 120))  # 60 px deep: beyond the copying from beside


def count_built(monkeypatch, name: str) -> list:
    """engine.synthesis's class `name` replaced by one that notes each instance built: the returned list."""
    from engine import synthesis

    built: list = []
    original = getattr(synthesis, name)

    class Counted(original):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(synthesis, name, Counted)
    return built


def square_stroke() -> np.ndarray:
    """A square stroke 30 px wide, 15 px deep, in a 256 px image: its first scale, 64 px, is a quarter of the crop."""
    stroke = np.zeros((256, 256), np.uint8)
    stroke[40:216, 40:216] = 255
    stroke[70:186, 70:186] = 0
    return stroke


def test_a_narrow_hole_copies_by_pixel_patches_alone_and_a_wide_one_along_neural_matches(random_vgg, monkeypatch):
    # Measured on strokes in 512 px crops: neural matches left soft streaks where pixel patches, coarse to fine,
    # continue the border (docs/quality.md); a wide hole's middle needs the neural matches' structure.
    image = noisy_photo(256, 256)
    built = count_built(monkeypatch, "NeuralEM")

    def neural_copies(mask: np.ndarray) -> int:
        built.clear()
        events = []
        result = fill(image, mask, get_preset("default", content="patches", completion=False),
                      progress=events.append)
        assert np.array_equal(result[mask == 0], image[mask == 0])
        assert any(e.stage == "synthesis" and e.scale == e.scales for e in events)  # every scale copies
        return len(built)

    assert neural_copies(square_stroke()) == 0
    # 80 px deep; at 64 px no whole known patch lies beside it, which once crashed the neural copying.
    assert neural_copies(centre_mask(256, 256, 160)) > 0


def test_a_wide_hole_is_completed_from_real_pixels_and_a_stroke_is_not(random_vgg, monkeypatch):
    # Wide holes: patch completion (engine/completion.py); strokes keep the pixel PatchMatch, which continues a
    # stroke's border best (docs/quality.md); `paper` keeps the reference's optimisation.
    image = noisy_photo(256, 256)
    built = count_built(monkeypatch, "Completion")

    def completions(mask: np.ndarray, **changes) -> int:
        built.clear()
        result = fill(image, mask, get_preset("default", content="patches", **changes))
        assert np.array_equal(result[mask == 0], image[mask == 0])
        return len(built)

    wide = centre_mask(256, 256, 160)
    assert completions(wide) == 1
    assert completions(square_stroke()) == 0
    assert completions(wide, completion=False) == 0


def test_cancel_stops_within_a_second(random_vgg):
    photo, mask = noisy_photo(512, 512), centre_mask(512, 512, 256)
    options = get_preset("default", iterations=(500,), completion=False)  # a long fill, within the work limit
    started, cancelled = threading.Event(), threading.Event()
    outcome = {}

    def progress(event):
        if event.stage == "synthesis":
            started.set()

    def run():
        try:
            fill(photo, mask, options, progress=progress, cancel=cancelled.is_set)
        except Cancelled:
            outcome["cancelled_at"] = time.perf_counter()

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(60)
    time.sleep(0.5)
    asked = time.perf_counter()
    cancelled.set()
    worker.join(10)
    assert "cancelled_at" in outcome
    assert outcome["cancelled_at"] - asked < 1.0


def test_same_seed_same_result(random_vgg):
    photo, mask = noisy_photo(128, 128), centre_mask(128, 128, 40)
    assert np.array_equal(fill(photo, mask, FAST), fill(photo, mask, FAST))


@pytest.mark.parametrize("mask, words", [
    (np.zeros((64, 64), np.uint8), "selects nothing"),
    (np.full((64, 64), 255, np.uint8), "whole image"),
    (np.ones((64, 65), np.uint8), "65x64 but the image is 64x64"),
    (np.full((64, 64), np.nan, np.float32), "NaN"),
    (np.ones((64, 64), np.int64), "unsupported mask type"),
])
def test_bad_masks_are_named(mask, words):
    with pytest.raises(MaskError, match=words):
        fill(noisy_photo(64, 64), mask, FAST)


@pytest.mark.parametrize("image, words", [
    (np.zeros((64, 64, 3), np.int32), "unsupported sample type"),
    (np.zeros((64, 64, 5), np.uint8), "unsupported image shape"),
    (np.zeros((8, 64, 3), np.uint8), "at least 16"),
    ([[1, 2], [3, 4]], "numpy array"),
])
def test_bad_images_are_named(image, words):
    with pytest.raises(ImageError, match=words):
        fill(image, np.ones((64, 64), bool), FAST)


def float_photo(value: float) -> np.ndarray:
    photo = noisy_photo(64, 64).astype(np.float32) / 255
    photo[5, 7, 1] = value  # one sample, outside the hole
    return photo


@pytest.mark.parametrize("value, words", [
    (1e19, "within 0..1, but they reach from 0 to 1e\\+19"),  # overflowed the synthesis into a hole of NaN
    (1.5, "reach from 0 to 1.5: scale or clip it"),  # was clipped to white without a word
    (-0.25, "reach from -0.25 to "),
    (np.nan, "NaN or infinite"),
    (np.inf, "NaN or infinite"),
])
def test_float_images_outside_0_to_1_are_refused_naming_the_range(value, words):
    with pytest.raises(ImageError, match=words):
        fill(float_photo(value), centre_mask(64, 64, 16), FAST)


@pytest.mark.parametrize("value", [2.0, -0.5, np.inf])
def test_float_masks_outside_0_to_1_are_refused_not_clipped(value):
    mask = centre_mask(64, 64, 16).astype(np.float32) / 255
    mask[30, 30] = value
    with pytest.raises(MaskError, match="mask"):
        fill(noisy_photo(64, 64), mask, FAST)


def test_a_rounding_error_outside_0_to_1_is_no_error():
    # GIMP's float pixels come through GEGL's perceptual <-> linear conversions, a float32 rounding off.
    for value in (1 + 1e-6, -1e-6, 0.0, 1.0):
        assert engine.pipeline.check_image(float_photo(value)) == 1.0


def test_transparent_pixels_are_never_copied_into_the_hole(random_vgg):
    photo = np.dstack([noisy_photo(128, 128), np.full((128, 128), 255, np.uint8)])
    photo[:, 100:, :3] = MAGENTA  # colour under fully transparent pixels is meaningless
    photo[:, 100:, 3] = 0
    mask = centre_mask(128, 128, 30)
    result = fill(photo, mask, FAST)
    assert np.abs(result[mask > 0, :3].astype(int) - MAGENTA).max(axis=1).min() > 50
