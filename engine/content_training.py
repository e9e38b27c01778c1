"""What the content network is trained to minimise, and one optimisation step: pure tensors, no files.

loss = L1 in the hole  +  PSNR_WEIGHT x mean over pictures of log10(squared error in its hole + PSNR_FLOOR)
       +  PERCEPTUAL_WEIGHT x relative L1 of VGG-19 relu2_1 / relu3_1 features of the composite.
The pixel terms get the colours and the large structure right, which is the network's whole job: texture is the
texture term's (engine/synthesis.py). The log term is minus the mean PSNR (over 10): it weighs each picture by how
well it is already filled, so the correction learns to leave alone the smooth holes the harmonic fill gets nearly
right. With a plain squared error (5x) and the feature term at 0.1, the first runs made the fills better on L1
but up to 0.4 dB worse on PSNR than the harmonic fill they correct: easy holes hardly count in a batch's mean.
The VGG is the frozen one the encoder uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .content_net import ContentNet

PERCEPTUAL_LAYERS = ("relu2_1", "relu3_1")
PERCEPTUAL_WEIGHT = 0.02
PSNR_WEIGHT = 0.02  # its gradient then matches the L1 term's on a typical hole and leads on easy ones
PSNR_FLOOR = 1e-4  # 40 dB: beyond that an easy hole is done


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
    squared_per_picture = ((predicted - target) ** 2 * hole).sum((1, 2, 3)) / \
        (hole.sum((1, 2, 3)) * target.shape[1]).clamp_min(1.0)
    total = hole_l1 + PSNR_WEIGHT * torch.log10(squared_per_picture + PSNR_FLOOR).mean()
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

