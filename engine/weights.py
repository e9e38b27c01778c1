"""Where the VGG-19 weights live and how they are loaded (no network code here; see `weights_fetch`).

The file is `vgg19-imagenet.safetensors` in the user data dir (`NEURAL_FILL_DATA_DIR` overrides it). It holds the
ImageNet VGG-19 conv layers of Simonyan & Zisserman (Oxford VGG, Caffe-trained; CC BY 4.0), keyed exactly like
`torchvision.models.vgg19().features.state_dict()` ("0.weight", "0.bias", ... "34.bias"), float32, OIHW.

Input convention: the ORIGINAL Caffe one, not torchvision's. The network expects BGR channel order, values on the
0..255 scale, minus the per-channel mean `CAFFE_MEAN_BGR` (B, G, R), with no division by a standard deviation.
The first conv is stored as trained (its input channels are B, G, R); nothing here reorders them.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import torch
from safetensors import SafetensorError, safe_open

from .errors import FETCH_COMMAND, WeightsError

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
DATA_DIR_ENV = "NEURAL_FILL_DATA_DIR"
WEIGHTS_FILENAME = "vgg19-imagenet.safetensors"

# (torchvision `features` index, Keras layer name, in channels, out channels) for the 16 conv layers.
VGG19_CONV_LAYERS: tuple[tuple[int, str, int, int], ...] = (
    (0, "block1_conv1", 3, 64),
    (2, "block1_conv2", 64, 64),
    (5, "block2_conv1", 64, 128),
    (7, "block2_conv2", 128, 128),
    (10, "block3_conv1", 128, 256),
    (12, "block3_conv2", 256, 256),
    (14, "block3_conv3", 256, 256),
    (16, "block3_conv4", 256, 256),
    (19, "block4_conv1", 256, 512),
    (21, "block4_conv2", 512, 512),
    (23, "block4_conv3", 512, 512),
    (25, "block4_conv4", 512, 512),
    (28, "block5_conv1", 512, 512),
    (30, "block5_conv2", 512, 512),
    (32, "block5_conv3", 512, 512),
    (34, "block5_conv4", 512, 512),
)


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the VGG-19 `features` conv parameters, in torchvision's key order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for index, _, in_ch, out_ch in VGG19_CONV_LAYERS:
        shapes[f"{index}.weight"] = (out_ch, in_ch, 3, 3)
        shapes[f"{index}.bias"] = (out_ch,)
    return shapes


def data_dir() -> Path:
    """The directory holding the engine's downloaded data."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir("neural-fill"))


def vgg19_path() -> Path:
    return data_dir() / WEIGHTS_FILENAME


def load_vgg19_state_dict(path: Path | None = None, depth: int | None = None) -> dict[str, torch.Tensor]:
    """The VGG-19 conv weights as a torchvision `features` state dict (Caffe BGR convention, see module doc); with
    `depth`, only the layers of the first `depth` modules are read and checked (the file must still hold them all)."""
    path = Path(path) if path is not None else vgg19_path()
    if not path.is_file():
        raise WeightsError(f"VGG-19 weights not found at {path}. Run `{FETCH_COMMAND}` to fetch them.")
    wanted = [key for key in expected_shapes() if depth is None or int(key.split(".")[0]) < depth]
    try:
        with safe_open(str(path), "pt") as handle:
            stored = set(handle.keys())
            problem = describe_key_problem(stored)
            # torchvision's layer order, whatever order the file keeps them in.
            state = {key: handle.get_tensor(key) for key in wanted} if problem is None else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"VGG-19 weights at {path} are unreadable or corrupt ({exc}). Run `{FETCH_COMMAND}` to fetch them again."
        ) from exc
    problem = problem or describe_layout_problem(state, wanted)
    if problem:
        raise WeightsError(f"VGG-19 weights at {path} are wrong: {problem}. Run `{FETCH_COMMAND}` to fetch them again.")
    return state


def describe_key_problem(keys: set[str]) -> str | None:
    """None when `keys` are exactly the expected ones; else which are missing or unexpected."""
    shapes = expected_shapes()
    missing = [key for key in shapes if key not in keys]
    unexpected = sorted(key for key in keys if key not in shapes)
    if missing or unexpected:
        return f"missing keys {missing}, unexpected keys {unexpected}"
    return None


def describe_layout_problem(state: dict[str, torch.Tensor], keys: list[str] | None = None) -> str | None:
    """None when `state` has exactly the expected keys (or `keys`, a part of them), shapes and dtype with finite
    values; else what is wrong."""
    shapes = expected_shapes()
    problem = describe_key_problem(set(state)) if keys is None else None
    if problem:
        return problem
    for key in keys or shapes:
        tensor = state[key]
        if tuple(tensor.shape) != shapes[key]:
            return f"{key} has shape {tuple(tensor.shape)}, expected {shapes[key]}"
        if tensor.dtype != torch.float32:
            return f"{key} has dtype {tensor.dtype}, expected torch.float32"
        # A NaN or inf would silently poison every fill, so it counts as corruption.
        if not bool(torch.isfinite(tensor).all()):
            return f"{key} contains NaN or infinite values"
    return None
