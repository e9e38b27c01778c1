"""The fill methods `neural-fill eval` can run: a registry of name -> builder.

A method is a callable (image uint8 HxWx3, hole bool HxW) -> uint8 HxWx3, its output composited with the known
pixels so they always come back unchanged. A method is named with options appended:
`full:content=patches:iterations=30/15/6` (engine methods take any FillOptions field, tuples with `/`, and
`preset`), `telea:radius=3`, `patchmatch:patch_size=5`. Peers (OpenCV, scikit-image, PatchMatch, Resynthesizer,
G'MIC) are optional: one that is not installed raises Unavailable, and the run reports it as skipped.

Loads no torch until an engine method is built.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

FillFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Unavailable(Exception):  # noqa: N818 - an outcome (reported as skipped), not an error
    """A method that cannot run here (a peer not installed, weights not fetched): reported as skipped."""


class Built(NamedTuple):
    run: FillFunction
    description: str
    version: str


# A builder gets the options written after the method's name (it removes those it uses; any left are an error)
# and the evaluation's seed; it raises Unavailable when the method cannot run here, ValueError for bad options.
Builder = Callable[[dict[str, str], int], Built]
KINDS = ("baseline", "engine", "network", "peer")


@dataclass(frozen=True)
class MethodEntry:
    name: str
    summary: str
    build: Builder
    kind: str = "peer"
    cheap: bool = False  # runs in well under a second on a 128 px crop and needs no weights: used by the tests


@dataclass(frozen=True)
class Method:
    """A method ready to run: `run` takes the image (hole grey) and the hole and returns the composited result."""

    label: str  # as asked for: the name with its options
    entry: MethodEntry
    run: FillFunction
    description: str
    version: str


METHODS: dict[str, MethodEntry] = {}


def register(name: str, build: Builder, summary: str, *, kind: str = "peer", cheap: bool = False) -> None:
    """Add a method (or replace the one of that name)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        raise ValueError(f"bad method name {name!r}: lower-case letters, digits, '-', '_' and '.' only")
    METHODS[name] = MethodEntry(name, summary, build, kind, cheap)


def registry() -> dict[str, MethodEntry]:
    """Every registered method, baselines first, then the engine's, the content network's, the peers'. The
    content network alone (`content-only`) is registered here, on first use, if engine.content_net imports."""
    if "content-only" not in METHODS:
        try:
            from engine.content_net import predict_image  # noqa: F401 - only whether it imports
        except ImportError:
            pass
        else:
            register("content-only", _build_content_only, "the trained content network alone (the paper's "
                     "Context Encoder analogue)", kind="network")
    order = sorted(METHODS.values(), key=lambda entry: KINDS.index(entry.kind))
    return {entry.name: entry for entry in order}


def parse_method(spec: str) -> tuple[str, dict[str, str]]:
    """'full:content=patches:iterations=30/15/6' -> ('full', {'content': 'patches', 'iterations': '30/15/6'})."""
    name, *parts = spec.strip().split(":")
    options = {}
    for part in parts:
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"method {spec!r}: options are written name:key=value[:key=value...], not {part!r}")
        options[key.strip().replace("-", "_")] = value.strip()
    return name.strip(), options


def make_method(spec: str, seed: int = 0) -> Method:
    """The method named by `spec` (a registry name, options after ':'), ready to run. Raises ValueError for an
    unknown name or option, Unavailable when it cannot run here."""
    name, options = parse_method(spec)
    entries = registry()
    if name not in entries:
        raise ValueError(f"unknown method {name!r}: choose from {', '.join(entries)}")
    entry = entries[name]
    remaining = dict(options)
    built = entry.build(remaining, seed)
    if remaining:
        raise ValueError(f"method {name!r} takes no option {', '.join(sorted(remaining))}")
    return Method(spec.strip(), entry, composited(built.run), built.description, built.version)


def composited(run: FillFunction) -> FillFunction:
    """The method's output checked and put back on the known pixels: they always come back unchanged."""

    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        out = np.asarray(run(image.copy(), hole.copy()))
        if out.shape != image.shape:
            raise ValueError(f"the method returned shape {out.shape} for an image of shape {image.shape}")
        if out.dtype != np.uint8:  # builders return uint8; anything else is taken as 0..255
            out = np.clip(np.round(out.astype(np.float64)), 0, 255).astype(np.uint8)
        return np.where(hole[..., None], out, image)

    return fill


def available_methods(seed: int = 0) -> tuple[list[Method], dict[str, str]]:
    """Every registered method that can be built here, and why each other one cannot."""
    methods, skipped = [], {}
    for name in registry():
        try:
            methods.append(make_method(name, seed))
        except Unavailable as reason:
            skipped[name] = str(reason)
    return methods, skipped


def _int_option(options: dict[str, str], name: str, default: int, low: int = 1) -> int:
    text = options.pop(name, None)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"option {name} must be a whole number, not {text!r}") from None
    if value < low:
        raise ValueError(f"option {name} must be at least {low}, not {value}")
    return value


def _distribution_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


# --- baseline


def _build_mean(options: dict[str, str], seed: int) -> Built:
    def mean_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        out = image.copy()
        out[hole] = np.round(image[~hole].reshape(-1, image.shape[2]).mean(axis=0)).astype(np.uint8)
        return out

    return Built(mean_fill, "the mean colour of the known pixels (the Context Encoder paper's 'mean fill')", "")


register("mean", _build_mean, "mean colour of the known pixels", kind="baseline", cheap=True)


# --- the engine

ENGINE_METHODS: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (preset, fixed overrides, summary)
    "full": ("default", {}, "engine.fill, default preset (the method)"),
    "no-content": ("default", {"content": "none"}, "engine.fill, default preset without the content term (the "
                   "paper's ablation)"),
    "preview": ("preview", {}, "engine.fill, preview preset (the cheap setting)"),
}


def _engine_builder(preset: str, fixed: dict[str, Any]) -> Builder:
    def build(options: dict[str, str], seed: int) -> Built:
        from engine.errors import OptionsError
        from engine.options import get_preset, parse

        preset_name = options.pop("preset", preset)
        values: dict[str, Any] = {"seed": seed, **fixed}
        try:
            values.update({key: parse(key, text) for key, text in options.items()})
            options.clear()
            fill_options = get_preset(preset_name, **values)
        except OptionsError as error:
            raise ValueError(str(error)) from None
        _check_engine_weights(fill_options.content)
        from engine import fill  # torch

        def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
            return fill(image, hole, fill_options)

        changed = {key: value for key, value in values.items() if key != "seed"}
        described = ", ".join(f"{key} {_format_option(getattr(fill_options, key))}"
                              for key in ("working_size", "scales", "iterations", "content", "texture_layers"))
        with_changes = f" with {', '.join(f'{k}={_format_option(v)}' for k, v in changed.items())}" if changed else ""
        from daemon.version import package_version

        return Built(run, f"engine.fill, preset {preset_name}{with_changes} ({described}, seed {seed})",
                     f"neural-fill {package_version()}")

    return build


def _format_option(value: Any) -> str:
    return "/".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def _check_engine_weights(content: str) -> None:
    from engine.weights import vgg19_path

    path = vgg19_path()
    if not path.is_file():
        raise Unavailable(f"the VGG-19 weights are not fetched ({path}): run `neural-fill fetch-weights`")
    if content == "network":
        _content_net_weights()


def _content_net_weights() -> Path:
    try:
        from engine.content_net import weights_path
    except ImportError as error:
        raise Unavailable(f"the content network does not import: {error}") from None
    path = weights_path()
    if not path.is_file():
        raise Unavailable(f"no content network weights ({path}): train them with `neural-fill train`")
    return path


for _name, (_preset_name, _fixed, _summary) in ENGINE_METHODS.items():
    register(_name, _engine_builder(_preset_name, _fixed), _summary, kind="engine")


def _build_content_only(options: dict[str, str], seed: int) -> Built:
    _check_engine_weights("network")
    path = _content_net_weights()
    from engine.content_net import predict_image

    def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return predict_image(image, hole)

    from daemon.version import package_version

    return Built(run, f"engine.content_net.predict_image, weights {path}", f"neural-fill {package_version()}")


# --- peers (optional: never dependencies of the project)


def _build_opencv(flag_name: str, label: str) -> Builder:
    def build(options: dict[str, str], seed: int) -> Built:
        try:
            import cv2
        except ImportError:
            raise Unavailable("OpenCV is not installed (pip install opencv-python-headless)") from None
        radius = _int_option(options, "radius", 5)
        flag = getattr(cv2, flag_name)

        def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
            return cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, radius, flag)

        return Built(run, f"cv2.inpaint, {label}, radius {radius}", f"opencv {cv2.__version__}")

    return build


register("telea", _build_opencv("INPAINT_TELEA", "Telea's fast marching"),
         "OpenCV Telea (fast marching)", cheap=True)
register("ns", _build_opencv("INPAINT_NS", "Navier-Stokes"), "OpenCV Navier-Stokes", cheap=True)


def _build_biharmonic(options: dict[str, str], seed: int) -> Built:
    try:
        import skimage
        from skimage.restoration import inpaint_biharmonic
    except ImportError:
        raise Unavailable("scikit-image is not installed (pip install scikit-image)") from None

    def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        filled = inpaint_biharmonic(image, hole, channel_axis=-1)  # float 0..1
        return np.clip(np.round(filled * 255), 0, 255).astype(np.uint8)

    return Built(run, "skimage.restoration.inpaint_biharmonic, channel_axis=-1", f"scikit-image {skimage.__version__}")


register("biharmonic", _build_biharmonic, "scikit-image biharmonic", cheap=True)


def _build_patchmatch(options: dict[str, str], seed: int) -> Built:
    try:
        import patchmatch
    except (ImportError, OSError) as error:
        raise Unavailable(f"pypatchmatch is not installed (pip install pypatchmatch): {error}") from None
    if not getattr(patchmatch, "patchmatch_available", True):
        raise Unavailable("pypatchmatch is installed but its native library did not load")
    patch_size = _int_option(options, "patch_size", 3)

    def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if hasattr(patchmatch, "set_random_seed"):
            patchmatch.set_random_seed(seed)
        return patchmatch.inpaint(image, hole.astype(np.uint8) * 255, patch_size=patch_size)

    side = 2 * patch_size + 1
    return Built(run, f"patchmatch.inpaint, patch_size {patch_size} ({side}x{side} patches), random seed {seed}",
                 f"pypatchmatch {_distribution_version('pypatchmatch')}")


register("patchmatch", _build_patchmatch, "PatchMatch (pypatchmatch)", cheap=True)


def _build_resynthesizer(options: dict[str, str], seed: int) -> Built:
    try:
        from resynthesizer import getDefaultParams, resynthesize
    except (ImportError, OSError) as error:
        raise Unavailable(f"resynthesizer is not installed (pip install resynthesizer; GPL-3): {error}") from None
    # GIMP's Filters > Enhance > Heal Selection calls the engine with: no tiling, random filling order
    # (matchContextType 1), no map, sensitivity 0.117, 16 neighbours, 500 probes. The PyPI module's own defaults
    # (tileable on both axes, 30 neighbours, 200 probes) are for texture synthesis, not for healing.
    neighbours = _int_option(options, "neighbours", 16)
    probes = _int_option(options, "probes", 500)
    parameters = getDefaultParams()
    parameters.isMakeSeamlesslyTileableHorizontally = 0
    parameters.isMakeSeamlesslyTileableVertically = 0
    parameters.matchContextType = 1
    parameters.mapWeight = 0.0
    parameters.sensitivityToOutliers = 0.117
    parameters.patchSize = neighbours
    parameters.maxProbeCount = probes

    def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        mask = Image.fromarray(hole.astype(np.uint8) * 255)
        return np.asarray(resynthesize(Image.fromarray(image), mask, parameters).convert("RGB"))

    description = (f"resynthesizer.resynthesize with GIMP Heal Selection's parameters ({neighbours} neighbours, "
                   f"{probes} probes, no tiling, random order)")
    return Built(run, description, f"resynthesizer {_distribution_version('resynthesizer')}")


register("resynthesizer", _build_resynthesizer, "Resynthesizer (GIMP's Heal Selection engine)", cheap=True)


def _build_gmic(options: dict[str, str], seed: int) -> Built:
    binary = shutil.which("gmic")
    if binary is None:
        raise Unavailable("the gmic program is not on PATH (apt-get install gmic)")
    patch = _int_option(options, "patch", 7)

    def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="neural-fill-gmic-") as work:
            source, mask, out = (str(Path(work) / name) for name in ("in.png", "mask.png", "out.png"))
            Image.fromarray(image).save(source)
            Image.fromarray(hole.astype(np.uint8) * 255).save(mask)
            command = [binary, "-v", "-", source, mask, "-inpaint[0]", f"[1],{patch}", "-o[0]", out]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0 or not Path(out).is_file():
                raise RuntimeError(f"gmic failed ({done.returncode}): {_strip_ansi(done.stderr).strip()[-300:]}")
            with Image.open(out) as result:
                return np.asarray(result.convert("RGB"))

    return Built(run, f"gmic in.png mask.png -inpaint[0] [1],{patch} (patch-based, patch size {patch})",
                 f"gmic {_gmic_version(binary)}")


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _gmic_version(binary: str) -> str:
    try:
        done = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(r"Version\s+([0-9][0-9.]*)", _strip_ansi(done.stdout + done.stderr))
    return found.group(1) if found else "unknown"


register("gmic", _build_gmic, "G'MIC patch-based inpaint", cheap=True)
