"""VGG-19 convolutions (torchvision's definition, Oxford's ImageNet weights) returning named relu outputs."""

from __future__ import annotations

import torch
from torch import nn

from .weights import CAFFE_MEAN_BGR, VGG19_CONV_LAYERS, load_vgg19_state_dict

# Indices in torchvision's vgg19().features of the relu outputs the method uses.
LAYER_INDEX = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu4_2": 22}
# Pixels per feature cell at each layer (the pooling so far).
LAYER_STRIDE = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8, "relu4_2": 8}


def vgg19_layers(depth: int) -> nn.Sequential:
    """The first `depth` modules of torchvision's vgg19().features, built here: importing torchvision costs more
    than a second. Each conv is followed by its relu, each block by a 2x2 max pool, and the modules are indexed as
    torchvision's are, so its state-dict keys ("21.weight") fit (tests/test_weights.py checks it)."""
    convs = {index: (cin, cout) for index, _, cin, cout in VGG19_CONV_LAYERS}
    layers: list[nn.Module] = []
    for index in range(depth):
        if index in convs:
            layers.append(nn.Conv2d(*convs[index], kernel_size=3, padding=1))
        elif index - 1 in convs:
            layers.append(nn.ReLU(inplace=True))
        else:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """Frozen VGG-19 up to the deepest layer asked for; takes RGB in 0..255 and does the Caffe preprocessing."""

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None, last_layer: str = "relu4_2") -> None:
        super().__init__()
        depth = LAYER_INDEX[last_layer] + 1
        # Convolutions only, and only as deep as the last layer used: the rest would be loaded for nothing.
        self.layers = vgg19_layers(depth)
        if state_dict is not None:
            kept = {k: v for k, v in state_dict.items() if int(k.split(".")[0]) < depth}
            self.layers.load_state_dict(kept, assign=True)  # the loaded tensors themselves, not copies
        self.layers.requires_grad_(False)
        self.eval()
        # Caffe weights expect BGR minus the ImageNet mean, in 0..255.
        self.register_buffer("mean_bgr", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))

    def forward(self, rgb255: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        wanted = {LAYER_INDEX[n]: n for n in names}
        x = rgb255.flip(1) - self.mean_bgr
        out: dict[str, torch.Tensor] = {}
        last = max(wanted)
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
            if index == last:
                break
        return out


_CACHE: dict[str, VGGFeatures] = {}


def load_vgg(device: torch.device) -> VGGFeatures:
    """The real-weights network on `device`, loaded once per process and kept (the daemon keeps it warm)."""
    key = str(device)
    if key not in _CACHE:
        model = VGGFeatures(load_vgg19_state_dict(depth=LAYER_INDEX["relu4_2"] + 1)).to(device)
        if device.type == "cpu":
            model = model.to(memory_format=torch.channels_last)  # faster convolutions on the CPU
        _CACHE[key] = model
    return _CACHE[key]
