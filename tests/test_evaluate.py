"""`neural-fill eval` (daemon/evaluation/run.py and its eval_* modules): masks, metrics, the method registry, the
photos chosen and a whole run on a tiny folder.

Offline and fast: the cheap methods only (the built-in mean fill, and the peers that happen to be installed); the
engine's preview method with the real weights is marked `weights`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from daemon.cli.evaluate import add_command
from daemon.evaluation.methods import (
    METHODS,
    Built,
    MethodEntry,
    Unavailable,
    make_method,
    parse_method,
    registry,
)
from daemon.evaluation.metrics import gradient_ratio, hole_box, hole_scores, ring, ssim, summarise, texture_match
from daemon.evaluation.perceptual import PerceptualUnavailable, perceptual_distance
from daemon.evaluation.photos import list_photos
from daemon.evaluation.report import _finite, _number
from daemon.evaluation.samples import HOLE_GREY, make_samples, scale_for_setting
from daemon.evaluation.settings import MASK_SETTINGS
from daemon.photos.manifest import Entry, Manifest, load_manifest, split_by_photo
from engine.hole_masks import centre_hole, free_form_hole, object_hole, stroke_hole
from tests.support.images import noisy_photo

DATA = Path(__file__).parent / "data"


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return noisy_photo(height, width, seed)


# ------------------------------------------------------------------------------------------------ masks and crops


def test_centre128_is_a_128_crop_with_exactly_the_64_centre_hole():
    image = photo(300, 450)
    [sample] = make_samples(image, "a.png", MASK_SETTINGS["centre128"], seed=3)
    assert sample.image.shape == (128, 128, 3) and sample.image.dtype == np.uint8
    expected = np.zeros((128, 128), bool)
    expected[32:96, 32:96] = True
    assert np.array_equal(sample.hole, expected)
    # The photo was brought to a short side of 256 (2x the crop) and the crop lies inside it.
    assert sample.scale == pytest.approx(256 / 300)
    scaled, _ = scale_for_setting(image, MASK_SETTINGS["centre128"])
    assert min(scaled.shape[:2]) == 256
    assert np.array_equal(scaled[sample.top:sample.top + 128, sample.left:sample.left + 128], sample.image)


def test_centre512_hole_is_the_256_centre():
    [sample] = make_samples(photo(600, 700), "a.png", MASK_SETTINGS["centre512"], seed=0)
    rows, cols = np.nonzero(sample.hole)
    assert sample.image.shape[:2] == (512, 512)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (128, 383, 128, 383)
    assert sample.hole.sum() == 256 * 256


def test_small_photos_are_enlarged_to_the_crop_and_big_ones_never_above_twice_it():
    setting = MASK_SETTINGS["centre128"]
    small, scale = scale_for_setting(photo(100, 150), setting)
    assert min(small.shape[:2]) == 128 and scale > 1
    same, scale = scale_for_setting(photo(200, 210), setting)  # between crop and 2x crop: kept as it is
    assert same.shape[:2] == (200, 210) and scale == 1.0


def test_crops_are_seeded_per_photo():
    setting = MASK_SETTINGS["centre128"]
    image = photo(400, 600)
    first = make_samples(image, "a.png", setting, seed=7, crops=3)
    again = make_samples(image, "a.png", setting, seed=7, crops=3)
    assert [(s.top, s.left) for s in first] == [(s.top, s.left) for s in again]
    other_seed = make_samples(image, "a.png", setting, seed=8, crops=3)
    other_name = make_samples(image, "b.png", setting, seed=7, crops=3)
    assert [(s.top, s.left) for s in first] != [(s.top, s.left) for s in other_seed]
    assert [(s.top, s.left) for s in first] != [(s.top, s.left) for s in other_name]


def test_training_draws_its_strokes_from_the_evaluation_generator():
    # One generator: the content network learns on the strokes it is scored on (they once came out twice as thick).
    import torch

    for seed in range(5):
        drawn = int(torch.randint(2**62, (1,), generator=torch.Generator().manual_seed(seed)))
        trained_on = stroke_hole(128, torch.Generator().manual_seed(seed))[0].numpy() > 0
        assert np.array_equal(trained_on, free_form_hole(128, np.random.default_rng(drawn)))
        assert 0.10 <= trained_on.mean() <= 0.30


def test_free_form_holes_cover_10_to_30_percent_and_repeat_with_the_seed():
    coverages = [free_form_hole(256, np.random.default_rng(seed)).mean() for seed in range(40)]
    assert all(0.10 <= c <= 0.30 for c in coverages)
    assert max(coverages) - min(coverages) > 0.08  # the coverage itself is drawn, not fixed
    first = free_form_hole(256, np.random.default_rng(5))
    assert np.array_equal(first, free_form_hole(256, np.random.default_rng(5)))
    assert not np.array_equal(first, free_form_hole(256, np.random.default_rng(6)))

    [sample] = make_samples(photo(300, 300), "a.png", MASK_SETTINGS["freeform"], seed=1)
    assert sample.image.shape[:2] == (256, 256) and 0.10 <= sample.hole.mean() <= 0.30


def test_object_holes_are_one_tall_or_wide_blob_of_8_to_20_percent_off_the_border_and_repeat_with_the_seed():
    from scipy.ndimage import label

    setting = MASK_SETTINGS["objects"]
    assert setting.crop == 512 and setting.coverage == (0.08, 0.20)
    holes = [object_hole(512, np.random.default_rng(seed), setting.coverage, setting.margin) for seed in range(24)]
    coverages = [hole.mean() for hole in holes]
    assert all(0.08 <= c <= 0.20 for c in coverages) and max(coverages) - min(coverages) > 0.05
    centres, shapes = set(), set()
    for hole in holes:
        assert label(hole)[1] == 1  # one region: the ellipses overlap
        rows, cols = np.nonzero(hole)
        assert min(rows.min(), cols.min()) >= setting.margin and max(rows.max(), cols.max()) < 512 - setting.margin
        height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
        shapes.add("tall" if height > 1.15 * width else "wide" if width > 1.15 * height else "round")
        centres.add((round(rows.mean()) // 64, round(cols.mean()) // 64))
    assert {"tall", "wide"} <= shapes
    assert len(centres) > 8  # placed anywhere, not at the centre
    first = make_samples(photo(600, 700), "a.png", setting, seed=4)[0]
    again = make_samples(photo(600, 700), "a.png", setting, seed=4)[0]
    assert np.array_equal(first.hole, again.hole) and first.image.shape[:2] == (512, 512)
    assert not np.array_equal(first.hole, make_samples(photo(600, 700), "a.png", setting, seed=5)[0].hole)


def test_the_methods_never_see_the_true_hole():
    [sample] = make_samples(photo(300, 300), "a.png", MASK_SETTINGS["centre128"], seed=0)
    given = sample.given()
    assert (given[sample.hole] == HOLE_GREY).all()
    assert np.array_equal(given[~sample.hole], sample.image[~sample.hole])


# ------------------------------------------------------------------------------------------------ metrics


def test_identical_images_score_zero_error_infinite_psnr_and_ssim_one():
    image = photo(64, 64)
    hole = centre_hole(64, 32)
    scores = hole_scores(image, image, hole)
    assert scores["l1"] == 0 and scores["l2"] == 0
    assert math.isinf(scores["psnr"]) and scores["psnr"] > 0
    assert scores["ssim"] == pytest.approx(1.0)
    summary = summarise([{**scores, "seconds": 1.0}, {**scores, "psnr": 20.0, "seconds": 3.0}])
    assert math.isinf(summary["psnr"]) and summary["seconds"] == 2.0 and summary["n"] == 2
    assert _number(summary["psnr"], 2) == "inf"
    assert json.loads(json.dumps(_finite(summary)))["psnr"] == "inf"


def test_a_constant_error_in_the_hole_gives_the_expected_l1_l2_and_psnr():
    original = np.full((64, 64, 3), 100, np.uint8)
    hole = centre_hole(64, 32)
    result = original.copy()
    result[hole] = 110  # 10 levels off in every channel of the hole
    result[~hole] = 0  # errors outside the hole are not counted
    scores = hole_scores(result, original, hole)
    assert scores["l1"] == pytest.approx(10 / 255 * 100)
    assert scores["l2"] == pytest.approx(100 / 255 ** 2 * 100)
    assert scores["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / 100))


def grass() -> np.ndarray:
    return np.asarray(Image.open(DATA / "grass.png").convert("RGB"))[:128, :128].copy()


def test_the_gradient_ratio_is_one_for_the_original_under_half_for_a_blur_and_over_one_and_a_half_for_noise():
    original = grass()
    hole = centre_hole(128, 64)
    blurred = np.asarray(Image.fromarray(original).filter(ImageFilter.GaussianBlur(3)))
    noisy = np.clip(original + np.random.default_rng(0).normal(0, 40, original.shape), 0, 255).astype(np.uint8)
    assert gradient_ratio(original, original, hole) == pytest.approx(1.0)
    assert gradient_ratio(blurred, original, hole) < 0.5
    assert gradient_ratio(noisy, original, hole) > 1.5


def test_the_texture_match_needs_no_original_and_tells_a_textured_fill_from_a_smudge():
    image = grass()
    hole = centre_hole(128, 64)
    smudge = image.copy()
    smudge[hole] = image[hole].mean(axis=0).astype(np.uint8)
    assert 0.8 < texture_match(image, hole) < 1.25  # the grass itself, as a perfect fill
    assert texture_match(smudge, hole) < 0.3
    assert math.isnan(texture_match(np.full_like(image, 90), hole))  # a flat ring: nothing to compare with


def test_the_ring_leaves_out_the_pixels_next_to_the_hole_and_scales_with_it():
    hole = centre_hole(128, 64)
    around = ring(hole)
    assert not (around & hole).any()
    assert not around[31, 40] and around[30, 40] and around[32 - 16, 40] and not around[32 - 17, 40]


def test_the_perceptual_distance_is_zero_for_the_original_and_grows_with_the_damage():
    try:
        distance = perceptual_distance()
    except PerceptualUnavailable as reason:
        pytest.skip(str(reason))
    original = grass()
    hole = centre_hole(128, 64)
    slight = np.asarray(Image.fromarray(original).filter(ImageFilter.GaussianBlur(1)))
    smudge = original.copy()
    smudge[hole] = original[hole].mean(axis=0).astype(np.uint8)
    assert distance(original, original, hole) == pytest.approx(0.0, abs=1e-9)
    assert 0 < distance(slight, original, hole) < distance(smudge, original, hole)
    outside_only = original.copy()
    outside_only[:16] = 0  # far from the hole: hardly counts
    assert distance(outside_only, original, hole) < distance(slight, original, hole)


def test_ssim_is_lower_for_noise_and_matches_skimage_when_installed():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 57)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 30, a.shape), 0, 255)
    value = ssim(a, b)
    assert 0 < value < 1
    assert ssim(a, a) == pytest.approx(1.0)
    metrics = pytest.importorskip("skimage.metrics")
    expected = metrics.structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False)
    assert value == pytest.approx(expected, abs=1e-9)


def test_ssim_covers_the_hole_box_grown_to_a_window():
    hole = np.zeros((50, 50), bool)
    hole[20, 30:34] = True  # a 1x4 scratch
    rows, cols = hole_box(hole)
    assert rows.stop - rows.start == 11 and cols.stop - cols.start == 11
    assert rows.start <= 20 < rows.stop and cols.start <= 30 and cols.stop > 33
    hole[:, :] = False
    hole[10:40, 5:45] = True
    assert hole_box(hole) == (slice(10, 40), slice(5, 45))


# ------------------------------------------------------------------------------------------------ methods


def cheap_methods() -> list[str]:
    return [name for name, entry in registry().items() if entry.cheap]


@pytest.mark.parametrize("name", cheap_methods())
def test_cheap_methods_fill_the_hole_and_keep_every_known_pixel(name):
    try:
        method = make_method(name, seed=0)
    except Unavailable as reason:
        pytest.skip(f"{name}: {reason}")
    [sample] = make_samples(photo(200, 200, seed=2), "a.png", MASK_SETTINGS["centre128"], seed=0)
    given = sample.given()
    out = method.run(given, sample.hole)
    assert out.shape == sample.image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~sample.hole], sample.image[~sample.hole])
    assert not (out[sample.hole] == HOLE_GREY).all()  # it did fill something
    assert np.array_equal(given, sample.given())  # the input was not written to


def test_outputs_are_composited_whatever_the_method_returns(monkeypatch):
    def careless(image, hole):
        return np.zeros_like(image, dtype=np.int32) + 300  # wrong type, out of range, known pixels changed

    monkeypatch.setitem(METHODS, "careless", MethodEntry("careless", "test", lambda options, seed: Built(
        careless, "test", ""), kind="baseline"))
    image = photo(32, 32)
    hole = centre_hole(32, 8)
    out = make_method("careless").run(image, hole)
    assert out.dtype == np.uint8 and (out[hole] == 255).all()
    assert np.array_equal(out[~hole], image[~hole])


def test_method_names_carry_options():
    assert parse_method("full:content=patches:iterations=30/15/6") == (
        "full", {"content": "patches", "iterations": "30/15/6"})
    with pytest.raises(ValueError, match="unknown option 'colour'"):
        make_method("full:colour=red")
    with pytest.raises(ValueError, match="key=value"):
        parse_method("telea:radius")
    with pytest.raises(ValueError, match="unknown method"):
        make_method("nonesuch")
    with pytest.raises(ValueError, match="takes no option"):
        make_method("mean:radius=3")
    try:
        method = make_method("telea:radius=3")
    except Unavailable:
        return
    assert "radius 3" in method.description and method.label == "telea:radius=3"


def test_the_registry_lists_engine_methods_and_peers_in_order():
    names = list(registry())
    assert names[:4] == ["mean", "full", "no-content", "preview"]
    assert {"telea", "ns", "biharmonic", "patchmatch", "resynthesizer", "gmic"} <= set(names)
    assert names.index("gmic") > names.index("preview")


# ------------------------------------------------------------------------------------------------ photos


def test_a_manifest_restricts_to_its_validation_split(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(photo(40, 40)).save(tmp_path / name)
    (tmp_path / "manifest.json").write_text(json.dumps([
        {"file": "a.png", "split": "train"}, {"file": "b.png", "split": "val"}, {"file": "gone.png", "split": "val"},
    ]))
    photos, note = list_photos(tmp_path)
    assert [p.name for p in photos] == ["b.png"] and "validation" in note and "missing" in note

    (tmp_path / "manifest.json").write_text(json.dumps([{"file": "a.png"}, {"file": "c.png"}]))
    assert [p.name for p in list_photos(tmp_path)[0]] == ["a.png", "c.png"]

    (tmp_path / "manifest.json").write_text("{not json")
    assert [p.name for p in list_photos(tmp_path)[0]] == ["a.png", "b.png", "c.png"]


def photos_folder(path, count: int = 7):
    """A folder as `neural-fill photos` writes it: one source, photos 0-3 one scene, and manifest.json."""
    path.mkdir()
    entries = []
    for number in range(count):
        name = f"fake/{number}.png"
        (path / "fake").mkdir(exist_ok=True)
        Image.fromarray(photo(40, 48, seed=number)).save(path / name)
        entries.append(Entry(name, "fake-data==1.0", f"images/{number}.png", "0" * 64, 48, 40, "CC0",
                             group="scene" if number < 4 else ""))
    Image.fromarray(photo(40, 48)).save(path / "stray.png")  # in the folder, not in the manifest
    (path / "manifest.json").write_text(json.dumps(Manifest(path, entries).to_json()))
    return path


def test_a_photos_manifest_is_scored_on_its_validation_split_only(tmp_path, capsys):
    data = photos_folder(tmp_path / "photos")
    training, validation = split_by_photo(load_manifest(data))  # as daemon/training/'s training_split
    assert training and validation
    chosen, note = list_photos(data)
    assert chosen == [data / entry.file for entry in validation]
    assert not set(chosen) & {data / entry.file for entry in training}
    assert f"validation split of the manifest: {len(validation)} photos" in note

    out = tmp_path / "out"
    assert run_command(["eval", "--data", str(data), "--out", str(out), "--methods", "mean", "--grids", "0",
                        "-q"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [sample["file"] for sample in results["samples"]] == [entry.file for entry in validation]
    assert f"validation split of the manifest: {len(validation)} photos" in (out / "results.md").read_text()

    (data / validation[0].file).unlink()  # a listed file gone: left out and said so
    chosen, note = list_photos(data)
    assert data / validation[0].file not in chosen and "1 listed but missing" in note


def test_other_manifests_are_read_tolerantly(tmp_path):
    for name in ("a.png", "b.png"):
        Image.fromarray(photo(40, 40)).save(tmp_path / name)
    # An object with "photos" whose entries are not `neural-fill photos` entries: its split markers still count.
    (tmp_path / "manifest.json").write_text(json.dumps({"photos": [{"file": "a.png", "split": "val"},
                                                                    {"file": "b.png", "split": "train"}]}))
    photos, note = list_photos(tmp_path)
    assert [p.name for p in photos] == ["a.png"] and note.startswith("manifest.json: the validation split")
    (tmp_path / "manifest.json").write_text(json.dumps({"photos": "not a list"}))
    assert [p.name for p in list_photos(tmp_path)[0]] == ["a.png", "b.png"]


def test_without_a_manifest_every_photo_but_the_output_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / ".hidden").mkdir()
    for path in ("x.jpg", "sub/y.png", "out/grid.png", ".hidden/z.png", "notes.txt"):
        (tmp_path / path).write_bytes(b"")
    photos, _ = list_photos(tmp_path, exclude=tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in photos] == ["sub/y.png", "x.jpg"]


# ------------------------------------------------------------------------------------------------ whole runs


def tiny_folder(path):
    path.mkdir()
    for number, (height, width) in enumerate(((260, 300), (180, 240), (300, 200))):
        Image.fromarray(photo(height, width, seed=number)).save(path / f"photo{number}.png")
    return path


def run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="neural-fill")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def cheap_peer(monkeypatch) -> str:
    """OpenCV Telea when installed, else a flat grey fill registered for the test."""
    try:
        make_method("telea")
    except Unavailable:
        def flat(image, hole):
            return np.full_like(image, 90)

        monkeypatch.setitem(METHODS, "flat", MethodEntry("flat", "test", lambda options, seed: Built(
            flat, "grey 90", ""), kind="baseline", cheap=True))
        return "flat"
    return "telea"


def test_eval_writes_the_table_the_json_and_the_grids(tmp_path, capsys, monkeypatch):
    data = tiny_folder(tmp_path / "photos")
    out = tmp_path / "out"
    methods = ["mean", cheap_peer(monkeypatch)]
    argv = ["eval", "--data", str(data), "--masks", "centre128", "--out", str(out), "--methods", ",".join(methods),
            "--seed", "1", "--grids", "2"]
    assert run_command(argv) == 0
    assert capsys.readouterr().out.count("] photo") == 3  # one progress line per image

    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert [row.split("|")[1].strip() for row in rows] == methods
    assert all(row.rstrip(" |").endswith("3") for row in rows)  # n = 3
    assert "--masks centre128" in table and "64x64 centre hole" in table

    results = json.loads((out / "results.json").read_text())
    assert len(results["samples"]) == 3
    assert set(results["samples"][0]["results"]) == set(methods)
    assert {"l1", "l2", "psnr", "ssim", "seconds"} <= set(results["samples"][0]["results"]["mean"])

    grids = sorted(p.name for p in out.glob("grid-*.png"))
    assert grids == ["grid-centre128-1.png", "grid-centre128-2.png"]
    with Image.open(out / grids[0]) as grid:
        assert grid.width >= 4 * 128 and grid.height > 128  # input, two methods, original; a caption row

    # The same seed gives the same crops and scores.
    assert run_command([*argv[:-4], "--seed", "1", "--grids", "0", "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    for first, second in zip(results["samples"], again["samples"], strict=True):
        assert first["crop"] == second["crop"]
        assert first["results"]["mean"]["l1"] == second["results"]["mean"]["l1"]


def test_eval_reports_missing_methods_as_skipped_and_refuses_when_none_can_run(tmp_path, monkeypatch):
    from daemon.cli.errors import CliError

    def missing(options, seed):
        raise Unavailable("not installed here")

    monkeypatch.setitem(METHODS, "absent", MethodEntry("absent", "test", missing))
    data = tiny_folder(tmp_path / "photos")
    out = tmp_path / "out"
    assert run_command(["eval", "--data", str(data), "--out", str(out), "--methods", "mean,absent",
                        "--limit", "1", "-q"]) == 0
    table = (out / "results.md").read_text()
    assert "| absent | skipped |" in table and "not installed here" in table
    with pytest.raises(CliError, match="no method can run"):
        run_command(["eval", "--data", str(data), "--out", str(out), "--methods", "absent", "-q"])
    with pytest.raises(CliError, match="unknown method"):
        run_command(["eval", "--data", str(data), "--out", str(out), "--methods", "nonesuch", "-q"])


@pytest.mark.weights
def test_eval_with_the_engine_preview(tmp_path):
    data = tiny_folder(tmp_path / "photos")
    out = tmp_path / "out"
    assert run_command(["eval", "--data", str(data), "--out", str(out), "--methods", "preview,mean", "--limit", "2",
                        "--grids", "1", "-q"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["methods"]["preview"]["summary"]["n"] == 2
    assert "preset preview" in results["methods"]["preview"]["description"]
    assert (out / "grid-centre128-1.png").is_file()


def test_an_unreadable_photo_is_reported_and_the_others_scored(tmp_path, capsys):
    data = tiny_folder(tmp_path / "photos")
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    assert run_command(["eval", "--data", str(data), "--out", str(out), "--methods", "mean", "--grids", "0"]) == 1
    assert "broken.png" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["methods"]["mean"]["summary"]["n"] == 3
