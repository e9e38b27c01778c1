"""What the content network is trained to minimise, and one optimisation step: pure tensors, no files.

loss = L1 in the hole  +  PERCEPTUAL_WEIGHT x relative L1 of VGG-19 relu2_1 / relu3_1 features of the composite.
The L1 term gets the colours and the large structure right; the feature term keeps edges from washing out (a
pure pixel loss learns the blur that minimises it). The VGG is the frozen one the encoder uses: no extra weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .content_net import ContentNet

PERCEPTUAL_LAYERS = ("relu2_1", "relu3_1")
PERCEPTUAL_WEIGHT = 0.2


@dataclass(frozen=True)
class LossParts:
    total: torch.Tensor
    hole_l1: float  # mean absolute error in the hole, 0..1 scale
    perceptual: float


def content_loss(network: ContentNet, target: torch.Tensor, hole: torch.Tensor,
                 perceptual_weight: float = PERCEPTUAL_WEIGHT) -> LossParts:
    """target (B,3,S,S) in 0..1 and hole (B,1,S,S): the loss of the network's prediction of the hole."""
    predicted = network(target, hole)
    hole_l1 = ((predicted - target).abs() * hole).sum() / (hole.sum() * target.shape[1]).clamp_min(1.0)
    total = hole_l1
    perceptual = torch.zeros((), device=target.device)
    if perceptual_weight > 0:
        features = network.vgg(predicted * 255, PERCEPTUAL_LAYERS)
        with torch.no_grad():
            reference = network.vgg(target * 255, PERCEPTUAL_LAYERS)
        for name in PERCEPTUAL_LAYERS:
            scale = reference[name].abs().mean().clamp_min(1e-6)
            perceptual = perceptual + (features[name] - reference[name]).abs().mean() / scale
        total = total + perceptual_weight * perceptual
    return LossParts(total, float(hole_l1.detach()), float(perceptual.detach()))


def training_step(network: ContentNet, optimizer: torch.optim.Optimizer, target: torch.Tensor,
                  hole: torch.Tensor) -> LossParts:
    network.decoder.train()
    optimizer.zero_grad(set_to_none=True)
    parts = content_loss(network, target, hole)
    parts.total.backward()
    torch.nn.utils.clip_grad_norm_(network.decoder.parameters(), 1.0)  # an odd batch must not wreck the run
    optimizer.step()
    return parts

