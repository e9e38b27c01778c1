"""Filters > Neural Fill in a real, headless GIMP 3 against a real daemon with the real VGG-19 weights.

The GIMP runs in a Debian chroot (tests/support/gimp_chroot.py builds it once: trixie for GIMP 3.0, forky for GIMP 3.2).
install.py installs the plug-in into a fresh profile there, vendoring pyzmq and msgpack for that GIMP's Python (the
chroot has neither). Each case builds an image in GIMP, selects, calls plug-in-neural-fill as a script would
(tests/support/gimp_driver.py), and the assertions read the exported pixels.

Without root, the Debian mirror or debootstrap (installed with the host's apt-get when missing) these tests skip,
saying why; NEURAL_FILL_REQUIRE_GIMP=1 (set by CI) turns that skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from daemon.service.client import Client
from tests.support import gimp_chroot
from tests.support.daemon_helpers import free_port
from tests.support.images import noisy_photo

REPO = Path(__file__).resolve().parents[1]
DRIVER = (Path(__file__).parent / "support" / "gimp_driver.py").read_text()
pytestmark = [pytest.mark.weights, pytest.mark.slow]


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def endpoint():
    """A real daemon on the host; the chroot shares the host's network, so GIMP reaches it on loopback."""
    address = f"tcp://127.0.0.1:{free_port()}"
    daemon = subprocess.Popen([sys.executable, "-m", "daemon.cli", "daemon", "--bind", address], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with Client(address, timeout=120) as client:
            client.hello()  # waits for the networks to load
        yield address
    finally:
        daemon.terminate()
        daemon.wait(30)


@dataclass(frozen=True)
class Gimp:
    root: Path
    release: str
    profile: str  # inside the chroot

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


@pytest.fixture(scope="module", params=["trixie", "forky"])
def gimp(request, endpoint):
    """A chroot with GIMP and the plug-in installed into a fresh profile by install.py, as a user would."""
    release = gimp_chroot.RELEASES[request.param]
    try:
        root = gimp_chroot.ensure_chroot(request.param)
        wheels = gimp_chroot.ensure_wheels(release.python_version)
    except gimp_chroot.ChrootUnavailable as why:
        if os.environ.get("NEURAL_FILL_REQUIRE_GIMP") == "1":
            pytest.fail(f"no GIMP {release.gimp_series} chroot: {why}")
        pytest.skip(f"no GIMP {release.gimp_series} chroot: {why}")
    profile = f"/root/profiles/tests-{os.getpid()}"
    host_profile = root / profile.lstrip("/")
    shutil.rmtree(host_profile, ignore_errors=True)
    installed = subprocess.run([sys.executable, str(REPO / "install.py"), "--skip-env", "--gimp-profile",
                                str(host_profile), "--create", "--gimp-python", release.python_version, "--wheels-from",
                                str(wheels), "--endpoint", endpoint, "--no-autostart"],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Next: restart GIMP" in installed.stdout and "Filters > Neural Fill" in installed.stdout
    yield Gimp(root, request.param, profile)
    shutil.rmtree(host_profile, ignore_errors=True)
    shutil.rmtree(root / "tmp" / f"cases-{os.getpid()}", ignore_errors=True)


# ------------------------------------------------------------------------------------------- running a case


@dataclass
class Outcome:
    result: dict
    input: np.ndarray  # the photo layer as given
    before: np.ndarray | None  # the photo layer as GIMP held it before the run
    photo: np.ndarray | None  # the photo layer after the run
    composite: np.ndarray | None  # the image's visible pixels after the run (image size)
    selection: np.ndarray | None  # 0..1, image coordinates
    fill_layer: np.ndarray | None
    heal_layer: np.ndarray | None = None  # the empty layer a case heals on, after the run

    @property
    def layer_names(self) -> list[str]:
        return [layer["name"] for layer in self.result["layers"]]


def run_case(gimp: Gimp, name: str, image: np.ndarray, case: dict, timeout: float = 300,
             display: str | None = None) -> Outcome:
    """image: the photo layer's pixels (H x W x C, uint8 or uint16) in case['format']."""
    inside = f"/tmp/cases-{os.getpid()}/{gimp.release}-{name}"
    folder = gimp.path(inside)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    height, width = image.shape[:2]
    case = {"base": "rgb", "precision": "u8", "format": "R'G'B' u8", "format_alpha": "R'G'B'A u8",
            "width": width, "height": height, "layer": {"x": 0, "y": 0, "width": width, "height": height,
                                                       "alpha": False}, **case}
    (folder / "case.json").write_text(json.dumps(case))
    (folder / "input.raw").write_bytes(np.ascontiguousarray(image).tobytes())
    done = gimp_chroot.run_gimp(gimp.root, gimp.profile, f"CASE_DIR = {inside!r}\n" + DRIVER, timeout=timeout,
                                release=gimp.release, display=display)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads((folder / "result.json").read_text())

    def read(name: str, shape: tuple[int, ...], dtype) -> np.ndarray | None:
        path = folder / f"{name}.raw"
        return np.fromfile(path, dtype).reshape(shape) if path.exists() else None

    dtype = image.dtype
    with_alpha = image.shape[2] + (0 if case["layer"]["alpha"] else 1)  # the new layer and the composite have it
    fill_layer = None
    for layer in result["layers"]:
        if layer["name"] == "Neural Fill":
            fill_layer = read("fill_layer", (layer["height"], layer["width"], with_alpha), dtype)
    composite = None
    if "merged" in result:  # the merged layer covers the visible layers; the rest of the canvas is empty
        merged = result["merged"]
        composite = np.zeros((case["height"], case["width"], with_alpha), dtype)
        composite[merged["y"]:merged["y"] + merged["height"], merged["x"]:merged["x"] + merged["width"]] = read(
            "composite", (merged["height"], merged["width"], with_alpha), dtype)
    return Outcome(result, image, read("before", image.shape, dtype), read("photo", image.shape, dtype), composite,
                   read("selection", (case["height"], case["width"]), np.float32), fill_layer,
                   read("heal_layer", (case["height"], case["width"], with_alpha), dtype))


def grainy_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Colour gradients across the frame plus grain: a fill put in the wrong place, or a flat one, shows."""
    return noisy_photo(height, width, seed)


def stripes(height: int, width: int, period: int = 16) -> np.ndarray:
    x = np.arange(width)
    row = np.where((x // (period // 2)) % 2 == 0, 50, 200).astype(np.uint8)
    grey = np.broadcast_to(row, (height, width))
    return np.ascontiguousarray(np.stack([grey, grey // 2 + 60, 255 - grey], axis=-1))


def ring(box: tuple[int, int, int, int], width: int) -> tuple[slice, slice]:
    top, left, bottom, right = box
    return slice(max(0, top - width), bottom + width), slice(max(0, left - width), right + width)


def assert_continues_its_surroundings(filled: np.ndarray, around: np.ndarray) -> None:
    """Not a flat colour and not something foreign: the fill's colour and contrast are those of the context."""
    filled, around = filled.reshape(-1, filled.shape[-1])[:, :3], around.reshape(-1, around.shape[-1])[:, :3]
    scale = 257.0 if around.dtype == np.uint16 else 1.0
    mean_gap = np.abs(filled.mean(0) - around.mean(0)).max() / scale
    assert mean_gap < 25, f"fill colour is {mean_gap:.0f} levels off its surroundings"
    contrast = filled.std(0).mean() / around.std(0).mean()
    assert contrast > 0.4, f"the fill is flat: {contrast:.2f} of the surrounding contrast"


def layer_box(layer: dict) -> tuple[int, int, int, int]:
    return layer["y"], layer["x"], layer["y"] + layer["height"], layer["x"] + layer["width"]


# ------------------------------------------------------------------------------------------------ success


def test_a_rectangle_fills_a_new_layer_above_holding_only_the_fill(gimp):
    photo = grainy_photo(160, 200)
    outcome = run_case(gimp, "rect", photo, {"selection": [{"shape": "rect", "x": 70, "y": 50, "w": 60, "h": 50}],
                                             "arguments": {"preset": "preview"}})
    assert outcome.result["success"], outcome.result["error"]
    assert outcome.layer_names == ["Neural Fill", "photo"]  # new layer on top of the active one
    layer = outcome.result["layers"][0]
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == (70, 50, 60, 50)
    assert np.array_equal(outcome.photo, photo)  # the original layer is untouched
    outside = outcome.selection == 0
    assert np.array_equal(outcome.composite[..., :3][outside], photo[outside])
    assert (outcome.composite[..., 3] == 255).all()
    assert (outcome.fill_layer[..., 3] == 255).all()  # a rectangle: fully opaque fill
    assert_continues_its_surroundings(outcome.composite[50:100, 70:130], photo[ring((50, 70, 100, 130), 24)])


def test_sampling_never_from_a_channel_keeps_a_marked_object_out_of_the_fill(gimp):
    # A uniquely coloured object right beside the selection, saved as a channel and chosen as what to avoid.
    photo = grainy_photo(160, 200)
    photo[50:100, 40:70] = (255, 0, 255)
    outcome = run_case(gimp, "sample-from", photo, {
        "channels": [{"name": "object", "rect": [40, 50, 30, 50]}],
        "selection": [{"shape": "rect", "x": 70, "y": 50, "w": 60, "h": 50}],
        "arguments": {"preset": "preview", "sample-from": "not-channel", "sample-channel": "channel:object"}})
    assert outcome.result["success"], outcome.result["error"]
    filled = outcome.composite[50:100, 70:130, :3].astype(int)
    magenta = (filled[..., 0] > 180) & (filled[..., 1] < 90) & (filled[..., 2] > 180)
    assert not magenta.any(), f"{magenta.sum()} pixels of the avoided object in the fill"
    assert np.array_equal(outcome.photo, photo)  # the object itself, and the rest of the layer, untouched


def test_healing_on_an_empty_layer_reads_the_visible_image_and_writes_only_the_fill_there(gimp):
    photo = grainy_photo(160, 200)
    outcome = run_case(gimp, "heal", photo, {"heal_layer": True,
                                             "selection": [{"shape": "rect", "x": 70, "y": 50, "w": 60, "h": 50}],
                                             "arguments": {"preset": "preview", "output": "in-place"}})
    assert outcome.result["success"], outcome.result["error"]
    assert outcome.layer_names == ["heal", "photo"]
    assert np.array_equal(outcome.photo, photo)  # the photo is never touched
    inside = outcome.selection > 0
    assert (outcome.heal_layer[..., 3][~inside] == 0).all()  # nothing but the fill on the healing layer
    assert (outcome.heal_layer[..., 3][inside] == 255).all()
    assert_continues_its_surroundings(outcome.heal_layer[50:100, 70:130], photo[ring((50, 70, 100, 130), 24)])


def test_in_place_continues_stripes_across_the_hole_and_changes_nothing_outside(gimp):
    photo = stripes(128, 192)
    outcome = run_case(gimp, "stripes", photo, {"selection": [{"shape": "rect", "x": 72, "y": 40, "w": 48, "h": 48}],
                                                "arguments": {"preset": "preview", "output": "in-place"}})
    assert outcome.result["success"], outcome.result["error"]
    assert outcome.layer_names == ["photo"]
    outside = outcome.selection == 0
    assert np.array_equal(outcome.photo[outside], photo[outside])
    filled = outcome.photo[40:88, 72:120, 0].astype(np.float32)
    truth = photo[40:88, 72:120, 0].astype(np.float32)
    correlation = np.mean([np.corrcoef(row, expected)[0, 1] for row, expected in zip(filled, truth, strict=True)])
    assert correlation > 0.5, f"stripes not continued in phase (row correlation {correlation:.2f})"


def test_a_feathered_ellipse_on_grey_keeps_its_soft_edge_at_full_precision(gimp):
    photo = noisy_photo(128, 128, seed=4)[..., 1:2]
    outcome = run_case(gimp, "feather", photo, {
        "base": "gray", "format": "Y' u8", "format_alpha": "Y'A u8",
        "selection": [{"shape": "ellipse", "x": 36, "y": 32, "w": 56, "h": 48}], "feather": 12,
        "arguments": {"preset": "preview"}})
    assert outcome.result["success"], outcome.result["error"]
    selection = outcome.selection
    assert ((selection > 0.05) & (selection < 0.95)).sum() > 100  # the feathered band exists
    layer = outcome.result["layers"][0]
    top, left, bottom, right = layer_box(layer)
    assert selection[:top].max() == 0 and selection[bottom:].max() == 0  # the new layer covers the selection
    alpha = outcome.fill_layer[..., 1].astype(np.float32) / 255
    assert np.abs(alpha - selection[top:bottom, left:right]).max() <= 1.01 / 255  # the selection, as drawn
    outside = selection == 0
    assert np.array_equal(outcome.composite[..., 0][outside], photo[..., 0][outside])
    core = selection > 0.9
    assert core.sum() > 300
    assert_continues_its_surroundings(outcome.composite[..., :1][core], photo[ring((top, left, bottom, right), 16)])


def test_a_layer_with_offsets_is_read_and_written_where_it_lies(gimp):
    photo = grainy_photo(140, 180, seed=1)
    photo = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], axis=2)
    outcome = run_case(gimp, "offsets", photo, {
        "width": 260, "height": 200, "layer": {"x": 50, "y": 30, "width": 180, "height": 140, "alpha": True},
        "format": "R'G'B'A u8",
        "selection": [{"shape": "rect", "x": 110, "y": 70, "w": 50, "h": 40}]})  # no arguments: every default
    assert outcome.result["success"], outcome.result["error"]
    layer = outcome.result["layers"][0]
    assert layer["name"] == "Neural Fill"
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == (110, 70, 50, 40)  # image coordinates
    composite = outcome.composite[30:170, 50:230]  # where the photo layer lies
    outside = outcome.selection[30:170, 50:230] == 0
    assert np.array_equal(composite[outside], photo[outside])
    assert_continues_its_surroundings(composite[40:80, 60:110], photo[ring((40, 60, 80, 110), 24)])


def test_rgba_in_place_keeps_alpha_and_every_pixel_outside(gimp):
    photo = grainy_photo(128, 160, seed=2)
    alpha = np.full(photo.shape[:2] + (1,), 255, np.uint8)
    alpha[:, :30] = 120  # a half-transparent band beside the hole
    photo = np.concatenate([photo, alpha], axis=2)
    outcome = run_case(gimp, "rgba", photo, {
        "layer": {"x": 0, "y": 0, "width": 160, "height": 128, "alpha": True}, "format": "R'G'B'A u8",
        "selection": [{"shape": "rect", "x": 60, "y": 40, "w": 40, "h": 40}],
        "arguments": {"preset": "preview", "output": "in-place"}})
    assert outcome.result["success"], outcome.result["error"]
    outside = outcome.selection == 0
    assert np.array_equal(outcome.photo[outside], photo[outside])
    assert (outcome.photo[40:80, 60:100, 3] == 255).all()  # the hole was opaque and stays so
    assert_continues_its_surroundings(outcome.photo[40:80, 60:100], photo[ring((40, 60, 80, 100), 20)][..., :3])


def test_a_16_bit_image_keeps_16_bits(gimp):
    rng = np.random.default_rng(3)
    photo = grainy_photo(128, 160, seed=3).astype(np.uint16) * 257 + rng.integers(0, 200, (128, 160, 3), np.uint16)
    outcome = run_case(gimp, "u16", photo, {
        "precision": "u16", "format": "R'G'B' u16", "format_alpha": "R'G'B'A u16",
        "selection": [{"shape": "rect", "x": 60, "y": 40, "w": 40, "h": 40}], "arguments": {"preset": "preview"}})
    assert outcome.result["success"], outcome.result["error"]
    outside = outcome.selection == 0
    assert np.array_equal(outcome.composite[..., :3][outside], photo[outside])  # bit-exact at 16 bits
    filled = outcome.fill_layer[..., :3]
    assert (filled % 257 != 0).mean() > 0.5  # not squeezed through 8 bits
    assert_continues_its_surroundings(filled, photo[ring((40, 60, 80, 100), 20)])


@pytest.mark.parametrize("key", ["Return", "Escape"])
def test_the_dialog_opens_ok_fills_and_cancel_leaves_the_image_alone(gimp, key):
    """Filters > Neural Fill as a user runs it: interactive, on a (virtual) screen; Return is OK, Escape Cancel."""
    problem = gimp_chroot.icon_sandbox_problem(gimp.root)
    if problem:
        pytest.skip(f"no GTK dialogs in the {gimp.release} chroot on this machine: {problem}")
    photo = grainy_photo(120, 160, seed=6)
    pressed = []
    with gimp_chroot.virtual_display(gimp.root) as display:
        presser = threading.Thread(target=lambda: pressed.append(
            gimp_chroot.press_key_in_window(gimp.root, display, "Neural Fill", key)))
        presser.start()
        outcome = run_case(gimp, f"dialog-{key}", photo, {
            "interactive": True, "selection": [{"shape": "rect", "x": 60, "y": 40, "w": 40, "h": 36}],
            "arguments": {"preset": "preview"}}, display=display)
        presser.join()
    assert pressed == [True], "the Neural Fill dialog did not appear"
    if key == "Return":
        assert outcome.result["success"], outcome.result["error"]
        assert outcome.layer_names == ["Neural Fill", "photo"]
    else:
        assert outcome.result["cancelled"] and outcome.layer_names == ["photo"]
    assert np.array_equal(outcome.photo, photo)


def test_a_float_image_travels_as_float(gimp):
    photo = grainy_photo(128, 160, seed=7).astype(np.float32) / 255
    outcome = run_case(gimp, "float", photo, {
        "precision": "float", "format": "R'G'B' float", "format_alpha": "R'G'B'A float",
        "selection": [{"shape": "rect", "x": 60, "y": 40, "w": 40, "h": 40}],
        "arguments": {"preset": "preview", "output": "in-place"}})
    assert outcome.result["success"], outcome.result["error"]
    outside = outcome.selection == 0
    assert np.array_equal(outcome.photo[outside], outcome.before[outside])
    assert np.abs(outcome.before - photo).max() < 1e-5  # only GEGL's perceptual <-> linear round trip
    filled = outcome.photo[40:80, 60:100]
    assert np.isfinite(filled).all() and len(np.unique(filled)) > 1000  # not through 8 or 16 bits
    assert_continues_its_surroundings(filled * 255, photo[ring((40, 60, 80, 100), 20)] * 255)


# ---------------------------------------------------------------------------------- errors: nothing changes


ERROR_CASES = {
    "no selection": ({}, "Nothing is selected"),
    "two layers": ({"second_layer": True, "selection": [{"shape": "rect", "x": 10, "y": 10, "w": 20, "h": 20}]},
                   "2 layers are selected"),
    "outside the layer": ({"width": 200, "height": 160, "layer": {"x": 0, "y": 0, "width": 100, "height": 80,
                                                                  "alpha": False},
                           "selection": [{"shape": "rect", "x": 150, "y": 120, "w": 30, "h": 30}]},
                          "outside layer 'photo'"),
    "daemon down": ({"selection": [{"shape": "rect", "x": 30, "y": 30, "w": 20, "h": 20}],
                     "arguments": {"endpoint": "tcp://127.0.0.1:{port}"}},
                    "No answer from the Neural Fill daemon.*Start it with: neural-fill daemon --bind "
                    "tcp://127.0.0.1:{port}"),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_a_bad_request_gets_a_clear_error_and_the_image_is_unchanged(gimp, name):
    case, message = ERROR_CASES[name]
    port = str(free_port())
    case, message = json.loads(json.dumps(case).replace("{port}", port)), message.replace("{port}", port)
    photo = grainy_photo(case.get("layer", {}).get("height", 100), case.get("layer", {}).get("width", 120))
    outcome = run_case(gimp, name.replace(" ", "-"), photo, case)
    assert not outcome.result["success"]
    assert re.search(message, outcome.result["error"]), outcome.result["error"]
    assert [name for name in outcome.layer_names if name != "other"] == ["photo"]
    assert np.array_equal(outcome.photo, photo)


def test_an_indexed_image_is_refused(gimp):
    outcome = run_case(gimp, "indexed", np.zeros((40, 40, 1), np.uint8), {
        "base": "indexed", "selection": [{"shape": "rect", "x": 5, "y": 5, "w": 10, "h": 10}]})
    assert not outcome.result["success"]
    assert outcome.result["error"]  # GIMP refuses it for the procedure's image types, or the plug-in does
    assert outcome.layer_names == ["photo"]


def test_stopping_the_plugin_mid_fill_cancels_the_job_and_the_daemon_goes_on(gimp, endpoint):
    """GIMP's progress-bar stop button ends the plug-in's process (nothing was written yet): the daemon must
    notice its client is gone, drop the job and keep serving. Here the whole GIMP is killed mid-fill."""
    slow = grainy_photo(384, 384, seed=5)
    seen, watching = [], threading.Event()

    def watch() -> None:  # the job must really be running when GIMP goes
        with Client(endpoint, timeout=10) as watcher:
            while not watching.is_set():
                seen.append(watcher.status()["running"])
                time.sleep(0.3)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            run_case(gimp, "killed", slow, {"selection": [{"shape": "rect", "x": 100, "y": 100, "w": 180, "h": 180}],
                                            "arguments": {"preset": "paper"}}, timeout=15)
    finally:
        watching.set()
        watcher.join()
    assert any(job is not None for job in seen[-5:]), "the fill was not running when GIMP was stopped"
    with Client(endpoint, timeout=10) as client:
        deadline = time.monotonic() + 20
        while client.status()["running"] is not None:
            assert time.monotonic() < deadline, "the daemon is still working for a plug-in that is gone"
            time.sleep(0.5)
        assert client.ping() < 1.0
