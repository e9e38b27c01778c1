"""How the content prediction enters the method: the harmonic fill the network corrects, the seamless reference
each scale follows, the scale the predictor is asked at, and the iterations a small crop gets."""

from __future__ import annotations

import torch

from engine import get_preset
from engine.content import harmonic_fill, push_pull_fill
from engine.synthesis import CropSynthesis, scale_plan, seamless


def ramp_with_hole(size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([0.2 + 0.6 * x, 0.9 - 0.7 * y, 0.3 + 0.3 * x + 0.2 * y])[None]
    known = torch.ones(1, 1, size, size)
    known[..., 20:80, 30:70] = 0
    return image, known


def test_the_harmonic_fill_restores_a_linear_ramp_and_keeps_known_pixels():
    image, known = ramp_with_hole()
    filled = harmonic_fill(image * known, known)
    assert torch.equal(filled * known, image * known)
    # A plane is harmonic: Laplace's equation gives it back from its border (push-pull only approximates it).
    assert (filled - image).abs().max() < 0.002
    assert (push_pull_fill(image * known, known) - image).abs().max() > 0.02


def test_the_harmonic_fill_of_a_flat_colour_is_that_colour_and_batches_fill_independently():
    colours = torch.tensor([0.1, 0.5, 0.9])[None, :, None, None].expand(2, 3, 64, 64).clone()
    colours[1] = 1 - colours[1]
    known = torch.ones(2, 1, 64, 64)
    known[0, :, 10:40, 10:40] = 0
    known[1, :, 30:60, 5:50] = 0
    filled = harmonic_fill(colours * known, known)
    assert torch.allclose(filled, colours, atol=1e-5)


def test_a_coarse_prediction_is_made_seamless_against_the_border_at_each_scale():
    image, known = ramp_with_hole()
    offset_prediction = image + 0.1  # right shape, wrong by a constant: a prediction from another scale
    reference = seamless(image, known, offset_prediction)
    assert torch.equal(reference * known, image * known)
    assert (reference - image).abs().max() < 0.02  # the constant error is carried away from the border
    assert torch.allclose(seamless(image, known, image), image)  # a prediction that already fits is kept


class RecordingPredictor:
    """Answers with the harmonic fill and remembers the size it was asked at."""

    smooth_prior = True

    def __init__(self, preferred_side: int | None) -> None:
        self.preferred_side = preferred_side
        self.sizes: list[tuple[int, int]] = []

    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(image.shape[-2:]))
        return harmonic_fill(image, 1 - hole)


def run_crop(random_vgg_model, predictor: RecordingPredictor, size: int) -> torch.Tensor:
    image = torch.rand(1, 3, size, size)
    hole = torch.zeros(1, 1, size, size)
    hole[..., size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
    options = get_preset("default", iterations=(0,))
    synthesis = CropSynthesis(random_vgg_model, options, predictor, lambda *a: None, lambda: None)
    return synthesis.run(image, hole, torch.zeros_like(hole), want_match=False).image


def test_the_predictor_is_asked_at_its_preferred_side_or_else_at_the_finest_scale(random_vgg_model):
    network_like = RecordingPredictor(preferred_side=128)
    run_crop(random_vgg_model, network_like, 512)  # scales 128, 256, 512
    run_crop(random_vgg_model, network_like, 128)  # scales 64, 128: the network's size is the finest
    assert network_like.sizes == [(128, 128), (128, 128)]
    anywhere = RecordingPredictor(preferred_side=None)
    run_crop(random_vgg_model, anywhere, 256)
    assert anywhere.sizes == [(256, 256)]


def test_a_small_crop_keeps_the_coarse_scales_iteration_counts():
    options = get_preset("default")
    counts = options.iterations_per_scale()
    assert [n for _, n in scale_plan(512, 512, options)] == list(counts)
    assert [n for _, n in scale_plan(128, 128, options)] == list(counts[:2])
    assert [n for _, n in scale_plan(64, 64, options)] == list(counts[:1])
