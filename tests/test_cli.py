"""The `neural-fill` command, run in-process with a fake engine: flags, validation order, errors, exit codes.

No test here runs the real fill: `daemon.cli.fill.run_fill` is replaced by one that paints the hole with a constant.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from daemon.cli import errors, progress
from daemon.cli import fill as cli_fill
from daemon.cli.main import build_parser, main
from daemon.files import read_image, write_image
from engine.errors import Cancelled, MaskError, WeightsError
from engine.options import PRESETS, FillOptions, get_preset
from engine.progress import Progress

REPO = Path(__file__).resolve().parents[1]
HOLE_VALUE = {np.dtype(np.uint8): 77, np.dtype(np.uint16): 40000}


class FakeEngine:
    """Records each call and fills the hole with a constant, blending grey mask values."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.failure: BaseException | None = None

    def __call__(self, image, mask, options, progress, cancel, source=None):
        self.calls.append({"image": image.copy(), "mask": mask.copy(), "options": options, "source": source})
        progress(Progress(stage="synthesis", fraction=0.5, scale=1, scales=2, iteration=3, iterations=10))
        if self.failure is not None:
            raise self.failure
        weight = mask.reshape(mask.shape + (1,) * (image.ndim - 2))
        filled = image * (1.0 - weight) + HOLE_VALUE[image.dtype] * weight
        return np.rint(filled).astype(image.dtype)


@pytest.fixture
def engine(monkeypatch, tmp_path) -> FakeEngine:
    fake = FakeEngine()
    weights = tmp_path / "weights" / "vgg19.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"not really weights")
    monkeypatch.setattr(cli_fill, "run_fill", fake)
    monkeypatch.setattr(cli_fill, "weights_file", lambda: weights)
    return fake


def photo(dtype=np.uint8, channels: int = 3, height: int = 6, width: int = 8) -> np.ndarray:
    top = np.iinfo(dtype).max
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = np.random.default_rng(3).integers(0, top + 1, shape, dtype=np.int64).astype(dtype)
    if channels in (2, 4):
        pixels[..., -1] = top
    return pixels


def hole_mask(height: int = 6, width: int = 8) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[2:4, 3:6] = 255
    return mask


def files(tmp_path, image: np.ndarray, mask: np.ndarray | None = None, image_name: str = "photo.png"):
    image_path = tmp_path / image_name
    write_image(image_path, image)
    mask_path = None
    if mask is not None:
        mask_path = tmp_path / "mask.png"
        write_image(mask_path, mask)
    return image_path, mask_path


def run(*args) -> int:
    return main([str(a) for a in args])


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("neural-fill: error: "), stderr
    return lines[0]


# ------------------------------------------------------------------------------------------------ success


@pytest.mark.parametrize(("dtype", "channels", "name", "out_name"), [
    (np.uint8, 3, "photo.png", "out.png"),
    (np.uint8, 1, "photo.png", "out.tif"),
    (np.uint16, 3, "photo.tif", "out.tif"),
    (np.uint16, 4, "photo.png", "out.png"),
])
def test_fill_writes_the_result_at_the_source_depth(tmp_path, engine, dtype, channels, name, out_name):
    image = photo(dtype, channels)
    image_path, mask_path = files(tmp_path, image, hole_mask(), image_name=name)
    out = tmp_path / out_name
    assert run("fill", image_path, "--mask", mask_path, "-o", out) == 0
    result = read_image(out)
    assert result.dtype == dtype and result.shape == image.shape
    hole = hole_mask() > 0
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert (result[hole] == HOLE_VALUE[np.dtype(dtype)]).all()


def test_fake_engine_gets_the_preset_with_flags_and_settings_applied(tmp_path, engine):
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    code = run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png", "--preset", "preview",
               "--scales", "3", "--iterations", "5", "--no-detail-transfer", "--device", "cpu", "--seed", "1",
               "--set", "seed=7", "--set", "content-weight=2.5", "--set", "texture_layers=relu3_1,relu4_1")
    assert code == 0
    expected = get_preset("preview", scales=3, iterations=(5,), detail_transfer=False, device="cpu", seed=7,
                          content_weight=2.5, texture_layers=("relu3_1", "relu4_1"))
    assert engine.calls[0]["options"] == expected


def test_default_preset_is_used_when_none_is_named(tmp_path, engine):
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == 0
    assert engine.calls[0]["options"] == PRESETS["default"][1]


def test_verbose_prints_the_options_used_the_time_and_a_flat_fills_poor_texture_match(tmp_path, engine, capsys):
    mask = np.zeros((40, 40), np.uint8)
    mask[12:28, 12:28] = 255
    image_path, mask_path = files(tmp_path, photo(height=40, width=40), mask)
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png", "--scales", "2", "-v", "-q") == 0
    err = capsys.readouterr().err
    assert "preset default" in err and "scales=2*" in err and re.search(r"seed=0(?!\*)", err)  # changed: starred
    assert "filled 256 px in " in err and "(this process)" in err
    assert re.search(r"computing on cpu \(.*threads\), precision (float32|bfloat16)", err)
    match = float(err.split("texture match ")[1].split()[0])
    assert match < 0.7 and "smoother than its surroundings" in err  # the fake engine fills flat grey into noise
    assert float(err.split("realism ")[1].split()[0]) > 1.5  # and no known patch is that flat


def test_every_command_takes_o_and_out_for_what_it_writes(tmp_path, engine, capsys):
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    assert run("fill", image_path, "-m", mask_path, "--out", tmp_path / "a.png") == 0
    assert capsys.readouterr().err == f"neural-fill: wrote {tmp_path / 'a.png'}\n"  # not a terminal: a log line
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "b.png", "-q") == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "a.png").is_file() and (tmp_path / "b.png").is_file()
    for command in (["batch", "--images", "i", "--masks", "m"], ["eval", "--data", "d"], ["photos"],
                    ["train", "--data", "d"]):
        for flag in ("-o", "--out"):
            assert build_parser().parse_args([*command, flag, "x"]).out == Path("x"), (command, flag)


def test_a_device_asked_of_a_daemon_is_an_error_not_a_silent_cpu_fill(tmp_path, engine, capsys):
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    for how in (["--device", "cuda"], ["--set", "device=cuda"]):
        assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png", "--daemon", *how) == 2
        assert "a daemon computes on the device it was started with" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.png").exists() and not engine.calls


def test_every_help_shows_each_flags_default_and_choices():
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, parser in commands.items():
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if not action.option_strings or action.help is None:
                continue
            if action.default not in (None, argparse.SUPPRESS, []) and not isinstance(action.default, bool):
                assert f"default: {action.default}" in text or f"default {action.default}" in text, (name, action)
            for choice in action.choices or ():
                assert str(choice) in text, (name, action, choice)
    fill_help = " ".join(commands["fill"].format_help().split())
    assert "(default preset: 512)" in fill_help  # an option flag says the preset's value it overrides


def test_fill_and_options_speak_json_for_scripts(tmp_path, engine, capsys):
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png", "--json", "--scales", "2") == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["output"] == str(tmp_path / "out.png") and facts["filled_pixels"] == (hole_mask() > 0).sum()
    assert facts["where"] == "this process" and facts["options"]["scales"] == 2 and facts["seconds"] >= 0
    assert run("options", "--json") == 0
    described = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in described["options"]] == [row["name"] for row in FillOptions.describe()]
    for name, (_, options) in PRESETS.items():
        assert described["presets"][name]["values"] == options.to_dict()
    default = {row["name"]: row["default"] for row in described["options"]}
    assert default == get_preset("default").to_dict()  # the values a fill starts from, not the dataclass's


def test_a_source_or_exclude_mask_says_where_the_fill_may_copy_from(tmp_path, engine, capsys):
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    area = np.zeros((6, 8), np.uint8)
    area[:, :4] = 255  # the left half marked
    write_image(tmp_path / "area.png", area)
    common = ("fill", image_path, "-m", mask_path, "-q")
    assert run(*common, "-o", tmp_path / "a.png", "--source-mask", tmp_path / "area.png") == 0
    assert run(*common, "-o", tmp_path / "b.png", "--exclude-mask", tmp_path / "area.png") == 0
    assert engine.calls[0]["source"].tolist() == (area > 0).tolist()  # may copy from the left half only
    assert engine.calls[1]["source"].tolist() == (area == 0).tolist()  # never from it
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "c.png", "--source-mask", tmp_path / "area.png",
               "--exclude-mask", tmp_path / "area.png") == 2  # one or the other
    assert "not allowed with argument" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "c.png").exists()


def test_every_option_has_a_generated_flag(capsys):
    assert run("fill", "--help") == 0
    help_text = capsys.readouterr().out
    for row in FillOptions.describe():
        assert "--" + row["name"].replace("_", "-") in help_text


def test_grey_mask_values_reach_the_engine_as_blend_weights(tmp_path, engine):
    mask = hole_mask()
    mask[0, 0] = 128
    image_path, mask_path = files(tmp_path, photo(), mask)
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == 0
    received = engine.calls[0]["mask"]
    assert received.dtype == np.float32
    assert received[0, 0] == pytest.approx(128 / 255)
    assert received[2, 3] == 1.0 and received[5, 7] == 0.0


@pytest.mark.parametrize("channels", [2, 4])
def test_without_mask_the_transparent_pixels_are_filled_and_made_opaque(tmp_path, engine, channels):
    image = photo(np.uint8, channels)
    image[2:4, 3:6, -1] = 0
    image[0, 0, -1] = 100
    image_path, _ = files(tmp_path, image)
    out = tmp_path / "out.png"
    assert run("fill", image_path, "-o", out) == 0
    call = engine.calls[0]
    assert call["image"].shape == (image.shape[:2] if channels == 2 else image.shape[:2] + (3,))
    assert call["mask"][2, 3] == 1.0 and call["mask"][0, 0] == pytest.approx(1 - 100 / 255)
    result = read_image(out)
    assert result.shape == image.shape
    assert (result[..., -1] == 255).all()
    assert (result[2:4, 3:6, :-1] == HOLE_VALUE[np.dtype(np.uint8)]).all()
    np.testing.assert_array_equal(result[5, :, :-1], image[5, :, :-1])


def test_16_bit_to_jpeg_warns_on_one_line_and_succeeds(tmp_path, engine, capsys):
    image_path, mask_path = files(tmp_path, photo(np.uint16), hole_mask(), image_name="photo.tif")
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.jpg") == 0
    assert "neural-fill: warning: JPEG holds 8 bits" in capsys.readouterr().err
    assert read_image(tmp_path / "out.jpg").dtype == np.uint8


def test_existing_output_is_replaced(tmp_path, engine):
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")
    assert run("fill", image_path, "-m", mask_path, "-o", out) == 0
    assert read_image(out).shape == (6, 8, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "out.png", "photo.png", "weights"]


def test_output_may_overwrite_the_input(tmp_path, engine):
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    assert run("fill", image_path, "-m", mask_path, "-o", image_path) == 0
    assert (read_image(image_path)[2, 3] == HOLE_VALUE[np.dtype(np.uint8)]).all()


# ------------------------------------------------------------------------------------------------ bad input


def write_noise(path: Path) -> Path:
    path.write_bytes(b"definitely not a picture")
    return path


def write_float_tiff(path: Path, value: float = 1e19) -> Path:
    tifffile.imwrite(path, np.full((6, 8), value, np.float32))
    return path


BAD_INPUTS = {
    # name: (arguments after the files are made, exit code, expected words)
    "missing image": (lambda t, i, m: ["fill", t / "nope.png", "-m", m, "-o", t / "out.png"], 2, "no such file"),
    "unreadable image": (lambda t, i, m: ["fill", write_noise(t / "junk.png"), "-m", m, "-o", t / "out.png"], 2,
                         "unsupported format"),
    "unreadable mask": (lambda t, i, m: ["fill", i, "-m", write_noise(t / "junk.png"), "-o", t / "out.png"], 2,
                        "junk.png"),
    "unknown extension": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.bmp"], 2,
                          "unknown output extension '.bmp'"),
    "missing output folder": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "no" / "out.png"], 2, "does not exist"),
    "unknown option": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--set", "scalez=2"], 2,
                       "unknown option 'scalez'; did you mean 'scales'?"),
    "option named like a parameter": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--set", "name=1"],
                                      2, "unknown option 'name'"),
    "bad value": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--set", "scales=many"], 2,
                  "option 'scales' must be a whole number, not 'many'"),
    "value out of range": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--set", "scales=9"], 2,
                           "at most 5"),
    "bad flag value": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--context", "wide"], 2,
                       "option 'context' must be a number"),
    "bad choice": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--device", "gpu"], 2,
                   "must be one of auto, cpu, cuda, mps"),
    "bad bool": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--set", "detail_transfer=maybe"], 2,
                 "true or false"),
    "set without equals": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--set", "scales"], 2,
                           "--set needs NAME=VALUE"),
    "unknown preset": (lambda t, i, m: ["fill", i, "-m", m, "-o", t / "out.png", "--preset", "best"], 2,
                       "invalid choice"),
    "no output flag": (lambda t, i, m: ["fill", i, "-m", m], 2, "-o/--out"),
    "no mask and no alpha": (lambda t, i, m: ["fill", i, "-o", t / "out.png"], 2, "no alpha channel"),
    # Files hold integers only: a float TIFF's 1e19 never reaches the engine as an image or a mask.
    "float image": (lambda t, i, m: ["fill", write_float_tiff(t / "f.tif"), "-m", m, "-o", t / "out.png"], 2,
                    "unsupported sample type (32-bit float32)"),
    "float mask": (lambda t, i, m: ["fill", i, "-m", write_float_tiff(t / "f.tif"), "-o", t / "out.png"], 2,
                   "unsupported sample type (32-bit float32)"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_error_line_and_no_output(tmp_path, engine, capsys, case):
    make_args, code, words = BAD_INPUTS[case]
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    args = make_args(tmp_path, image_path, mask_path)
    before = set(tmp_path.rglob("*"))
    assert run(*args) == code
    assert words in one_error_line(capsys.readouterr().err)
    assert set(tmp_path.rglob("*")) - before == set()
    assert engine.calls == []


@pytest.mark.parametrize(("mask_shape", "words"), [((6, 9), "the mask is 9x6 pixels but the image is 8x6"),
                                                    ((8, 6), "rotated")])
def test_mask_size_mismatch_names_both_sizes(tmp_path, engine, capsys, mask_shape, words):
    image_path, _ = files(tmp_path, photo())
    mask_path = tmp_path / "mask.png"
    write_image(mask_path, np.full(mask_shape, 255, np.uint8))
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(("value", "words"), [(0, "the mask selects nothing"), (255, "nothing left to copy from")])
def test_empty_and_full_masks_are_refused_before_the_fill(tmp_path, engine, capsys, value, words):
    image_path, mask_path = files(tmp_path, photo(), np.full((6, 8), value, np.uint8))
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.png").exists()
    assert engine.calls == []


def test_fully_opaque_image_without_mask_selects_nothing(tmp_path, engine, capsys):
    image_path, _ = files(tmp_path, photo(np.uint8, 4))
    assert run("fill", image_path, "-o", tmp_path / "out.png") == 2
    assert "selects nothing" in one_error_line(capsys.readouterr().err)


def test_missing_weights_names_the_fetch_command(tmp_path, engine, monkeypatch, capsys):
    monkeypatch.setattr(cli_fill, "weights_file", lambda: tmp_path / "absent.safetensors")
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == 1
    assert "`neural-fill fetch-weights`" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.png").exists()
    assert engine.calls == []


def test_the_mask_is_checked_before_the_weights(tmp_path, engine, monkeypatch, capsys):
    monkeypatch.setattr(cli_fill, "weights_file", lambda: tmp_path / "absent.safetensors")
    image_path, mask_path = files(tmp_path, photo(), np.zeros((6, 8), np.uint8))
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == 2
    assert "selects nothing" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(("failure", "code", "words"), [
    (MaskError("the hole touches every border"), 2, "the hole touches every border"),
    (WeightsError("VGG-19 weights at x are wrong"), 1, "weights at x are wrong"),
    (RuntimeError("CUDA out of memory"), 1, "unexpected failure (RuntimeError): CUDA out of memory"),
])
def test_engine_failures_leave_an_existing_output_untouched(tmp_path, engine, capsys, failure, code, words):
    engine.failure = failure
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")
    assert run("fill", image_path, "-m", mask_path, "-o", out) == code
    assert words in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "out.png", "photo.png", "weights"]


def test_debug_shows_the_traceback_of_an_unexpected_failure(tmp_path, engine):
    engine.failure = RuntimeError("boom")
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    with pytest.raises(RuntimeError, match="boom"):
        run("--debug", "fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png")


# ------------------------------------------------------------------------------------------------ Ctrl-C


def test_ctrl_c_asks_the_engine_to_cancel_and_nothing_is_written(tmp_path, engine, monkeypatch, capsys):
    seen = {}

    def engine_that_polls(image, mask, options, progress, cancel):
        seen["before"] = cancel()
        signal.raise_signal(signal.SIGINT)
        seen["after"] = cancel()
        raise Cancelled("fill cancelled")

    monkeypatch.setattr(cli_fill, "run_fill", engine_that_polls)
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN when the suite runs in the background
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == 130
    assert seen == {"before": False, "after": True}
    assert "cancelled" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.png").exists()
    assert signal.getsignal(signal.SIGINT) is before  # given back as it was


def test_second_ctrl_c_stops_an_engine_that_does_not_poll(tmp_path, engine, monkeypatch, capsys):
    def engine_that_never_polls(image, mask, options, progress, cancel):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("the second Ctrl-C should have stopped us")

    monkeypatch.setattr(cli_fill, "run_fill", engine_that_never_polls)
    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == 130
    assert not (tmp_path / "out.png").exists()


# ------------------------------------------------------------------------------------------------ progress


def test_progress_description_names_stage_hole_scale_and_iteration():
    event = Progress(stage="synthesis", fraction=0.4, region=1, regions=3, scale=2, scales=3, iteration=7,
                     iterations=30)
    assert progress.describe_progress(event) == "synthesis, hole 2/3, scale 2/3, iteration 7/30"
    assert progress.describe_progress(Progress(stage="prepare", fraction=0.0)) == "prepare"


def test_progress_bar_draws_the_engine_events():
    stream = io.StringIO()
    with progress.ProgressBar(enabled=True, stream=stream, min_interval=0) as bar:
        bar(Progress(stage="synthesis", fraction=0.25, scale=1, scales=2, iteration=3, iterations=10))
        bar(Progress(stage="done", fraction=1.0))
    drawn = stream.getvalue()
    assert "synthesis, scale 1/2, iteration 3/10" in drawn
    assert "100%" in drawn


def test_the_bars_clock_ticks_on_between_events():
    # A load or a long scale sends no event for seconds: the elapsed time must still move.
    stream = io.StringIO()
    with progress.ProgressBar(enabled=True, stream=stream, min_interval=0) as bar:
        bar(Progress(stage="load", fraction=0.0))
        deadline = time.monotonic() + 10
        while "00:01<" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "load   0%" in stream.getvalue() and "00:01<" in stream.getvalue()


# ------------------------------------------------------------------------------------------------ other commands


def test_options_lists_every_option_and_preset(capsys):
    assert run("options") == 0
    out = capsys.readouterr().out
    for row in FillOptions.describe():
        assert row["name"] in out
    for name, (description, _) in PRESETS.items():
        assert name in out and description in out


def test_fetch_weights_passes_source_and_force_and_prints_the_path(tmp_path, monkeypatch, capsys):
    import engine.weights_fetch

    calls = []
    source = tmp_path / "vgg19.h5"
    source.write_bytes(b"h5")

    def fake_fetch(source=None, force=False, log=print, **_):
        calls.append((source, force))
        return tmp_path / "vgg19-imagenet.safetensors"

    monkeypatch.setattr(engine.weights_fetch, "fetch_vgg19", fake_fetch)
    assert run("fetch-weights", "--from", source, "--force") == 0
    assert calls == [(str(source), True)]
    assert str(tmp_path / "vgg19-imagenet.safetensors") in capsys.readouterr().out


def test_fetch_weights_from_a_missing_file_is_bad_input(tmp_path, capsys):
    assert run("fetch-weights", "--from", tmp_path / "absent.h5") == 2
    assert "no such file" in one_error_line(capsys.readouterr().err)


def test_version(capsys):
    assert run("--version") == 0
    assert capsys.readouterr().out.startswith("neural-fill ")


def test_no_command_is_bad_input(capsys):
    assert run() == 2
    one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(("args", "words"), [
    (["fill", "a.png", "-o", "b.jpg", "--quality", "0"], "'0' is not a JPEG quality: a whole number from 1 to 100"),
    (["fill", "a.png", "-o", "b.jpg", "--quality", "101"], "'101' is not a JPEG quality"),
    (["fill", "a.png", "-o", "b.jpg", "--quality", "high"], "'high' is not a JPEG quality"),
    (["batch", "--images", ".", "--masks", ".", "-o", "out", "--ray", "--workers", "0"],
     "'0' is not a number of workers: a whole number from 1"),
    (["eval", "--data", ".", "-o", "out", "--seed", "-1"], "'-1' is not a seed: a whole number from 0"),
])
def test_whole_number_flags_say_what_they_take(args, words, capsys):
    assert run(*args) == 2
    assert words in one_error_line(capsys.readouterr().err)


def test_workers_without_ray_is_refused(tmp_path, capsys):
    assert run("batch", "--images", tmp_path, "--masks", tmp_path, "-o", tmp_path / "out", "--workers", "2") == 2
    assert "--workers is for --ray" in one_error_line(capsys.readouterr().err)


def test_module_entry_point_exits_with_the_error_code(tmp_path):
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "fill", str(tmp_path / "missing.png"),
                           "-o", str(tmp_path / "out.png")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no such file" in one_error_line(done.stderr)
    assert not (tmp_path / "out.png").exists()


def test_a_reader_that_went_away_gets_no_error_message():
    # `neural-fill options | head -1`: a closed pipe is the reader's choice, not a failure to report.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "daemon.cli", "options"], cwd=REPO, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""


def test_sigterm_while_the_output_is_written_leaves_neither_output_nor_part_file(tmp_path, engine, monkeypatch,
                                                                                 capsys):
    from daemon import files as image_files

    real_write_png = image_files._write_png

    def write_then_get_terminated(f, pixels, metadata):
        f.write(b"half a PNG")
        signal.raise_signal(signal.SIGTERM)  # the real signal, through the handler `fill` sets
        real_write_png(f, pixels, metadata)

    image_path, mask_path = files(tmp_path, photo(), hole_mask())
    monkeypatch.setattr(image_files, "_write_png", write_then_get_terminated)
    assert run("fill", image_path, "-m", mask_path, "-o", tmp_path / "out.png") == errors.EXIT_TERMINATED
    assert "stopped by SIGTERM; no output written" in one_error_line(capsys.readouterr().err)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mask.png", "photo.png", "weights"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# ------------------------------------------------------------------------------------------ output folders


def batch_folders(tmp_path) -> tuple[Path, Path]:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    image_path, mask_path = files(images, photo(), hole_mask())
    mask_path.rename(masks / image_path.name)
    return images, masks


@pytest.mark.parametrize(("out", "words"), [("a-file", "is a file, not a folder"),
                                            ("a-file/out", "cannot make the folder (Not a directory)")])
def test_a_batch_into_a_file_is_refused_with_one_line_before_any_fill(tmp_path, engine, monkeypatch, capsys, out,
                                                                     words):
    import daemon.cli.batch as cli_batch

    images, masks = batch_folders(tmp_path)
    (tmp_path / "a-file").write_bytes(b"not a folder")
    monkeypatch.setattr(cli_batch, "run_batch", lambda *a, **k: pytest.fail("the batch started"))
    before = set(tmp_path.rglob("*"))
    assert run("batch", "--images", images, "--masks", masks, "-o", tmp_path / out, "-q") == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert set(tmp_path.rglob("*")) == before


def test_the_batch_library_checks_its_output_folder_before_it_loads_anything(tmp_path, monkeypatch):
    from daemon.batch import local
    from daemon.files import ImageFileError

    images, masks = batch_folders(tmp_path)
    (tmp_path / "a-file").write_bytes(b"not a folder")
    monkeypatch.setattr(local, "InProcess", lambda options: pytest.fail("a filler was made"))
    with pytest.raises(ImageFileError, match="is a file, not a folder"):
        local.run_batch(images, masks, tmp_path / "a-file", [], get_preset("preview"), quiet=True)


@pytest.fixture
def locked_folder():
    """(folder, command prefix): a folder that the command prefix's user cannot write in. Root writes anywhere, so
    as root the command runs as `nobody`; the folder lives under /tmp, which nobody may enter."""
    import tempfile

    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("as root, running the command as another user needs setpriv")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    root = Path(tempfile.mkdtemp(prefix="neural-fill-locked-"))
    try:
        root.chmod(0o755)
        images, masks = batch_folders(root)
        for path in (images, masks, *images.iterdir(), *masks.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        locked = root / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        yield locked, prefix
    finally:
        locked.chmod(0o755)
        shutil.rmtree(root)


@pytest.mark.parametrize(("command", "words"), [
    (["batch", "--images", "{root}/images", "--masks", "{root}/masks", "-o", "{locked}", "-q"],
     "locked: cannot write in this folder"),
    (["batch", "--images", "{root}/images", "--masks", "{root}/masks", "-o", "{locked}/new", "-q"],
     "cannot make the folder (Permission denied)"),
    (["fill", "{root}/images/photo.png", "-m", "{root}/masks/photo.png", "-o", "{locked}/out.png"],
     "cannot write in the folder"),
])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_fill(locked_folder, command, words):
    from daemon.service.endpoints import RUNTIME_ENV
    from daemon.service.keys import CONFIG_DIR_ENV

    locked, prefix = locked_folder
    args = [word.format(root=locked.parent, locked=locked) for word in command]
    # The test run's private user folders are root's: the other user gets folders it may read.
    env = {**os.environ, **{name: str(locked.parent) for name in (RUNTIME_ENV, CONFIG_DIR_ENV, "XDG_STATE_HOME")}}
    done = subprocess.run([*prefix, sys.executable, "-m", "daemon.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stderr
    assert words in one_error_line(done.stderr)
    assert list(locked.iterdir()) == []
