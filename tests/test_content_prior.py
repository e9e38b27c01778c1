"""How the content prediction enters the method: the harmonic fill the network corrects, the seamless reference
each scale follows, the scale the predictor is asked at, and the iterations a small crop gets."""

from __future__ import annotations

import torch

from engine import get_preset
from engine.content import harmonic_fill, push_pull_fill, seamless
from engine.synthesis import CropSynthesis, scale_plan


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

    def __init__(self, preferred_side: int) -> None:
        self.preferred_side = preferred_side
        self.sizes: list[tuple[int, int]] = []

    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(image.shape[-2:]))
        return harmonic_fill(image, 1 - hole)


class RecordingProgress:
    def __init__(self) -> None:
        self.plans: list[list[tuple[int, int]]] = []
        self.scales_reported: set[int] = set()

    def plan(self, plan) -> None:
        self.plans.append([size for size, _ in plan])

    def iteration(self, scale: int, iteration: int, iterations: int) -> None:
        self.scales_reported.add(scale)


def run_crop(random_vgg_model, predictor: RecordingPredictor, size: int, iterations: int = 0) -> RecordingProgress:
    image = torch.rand(1, 3, size, size)
    hole = torch.zeros(1, 1, size, size)
    hole[..., size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
    options = get_preset("default", iterations=(iterations,), completion=False)  # the scales' pyramid
    progress = RecordingProgress()
    synthesis = CropSynthesis(random_vgg_model, options, [predictor], lambda: None, progress)
    synthesis.run(image, hole, torch.zeros_like(hole), want_match=False)
    return progress


def test_the_pyramid_starts_where_the_predictor_predicts_at_its_preferred_side(random_vgg_model):
    network_like = RecordingPredictor(preferred_side=128)
    big = run_crop(random_vgg_model, network_like, 512)
    small = run_crop(random_vgg_model, network_like, 128, iterations=1)
    assert network_like.sizes == [(128, 128), (128, 128)]
    assert big.plans == [[(128, 128), (256, 256), (512, 512)]]
    # A 128 px crop is not first optimised at 64 px: that would only blur the prediction it already has.
    assert small.plans == [[(128, 128)]] and small.scales_reported == {0}
    coarsest = RecordingPredictor(preferred_side=0)
    assert run_crop(random_vgg_model, coarsest, 256).plans == [[(64, 64), (128, 128), (256, 256)]]
    assert coarsest.sizes == [(64, 64)]


def test_a_crop_with_fewer_scales_keeps_the_coarse_scales_iteration_counts():
    options = get_preset("default")
    counts = options.iterations_per_scale()
    assert [n for _, n in scale_plan(512, 512, options)] == list(counts)
    assert [n for _, n in scale_plan(128, 128, options)] == list(counts[:2])
    assert [n for _, n in scale_plan(64, 64, options)] == list(counts[:1])
    assert scale_plan(128, 128, options, first_side=128) == [((128, 128), counts[0])]
    assert [size for size, _ in scale_plan(512, 512, options, first_side=256)] == [(256, 256), (512, 512)]
