"""Which content prediction a crop gets: a smooth prior on photos, the photo's own patches on a regular pattern,
told apart by how well each predicts a ring of known pixels hidden around the hole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.content import DiffusionPredictor
from engine.content_choice import choose_predictor, make_predictors, ring_errors
from engine.patch_fill import PatchFillPredictor
from tests.support.images import noisy_photo, stripes


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def centre_hole(size: int, side: int) -> torch.Tensor:
    hole = torch.zeros(1, 1, size, size)
    start = (size - side) // 2
    hole[..., start:start + side, start:start + side] = 1
    return hole


def test_on_a_regular_pattern_the_patches_win_and_on_a_smooth_photo_the_first_candidate_stays():
    smooth, patches = DiffusionPredictor(), PatchFillPredictor()
    hole = centre_hole(128, 48)
    nowhere = torch.zeros_like(hole)
    striped = as_tensor(stripes(128, 128, period=12))
    assert choose_predictor([smooth, patches], striped, hole, nowhere) is patches
    photo_like = as_tensor(noisy_photo(128, 128, seed=3))  # gradients and grain: nothing for patches to continue
    assert choose_predictor([smooth, patches], photo_like, hole, nowhere) is smooth


def test_the_check_is_made_on_known_pixels_only_and_a_single_candidate_needs_no_check():
    hole = centre_hole(64, 20)
    image = as_tensor(stripes(64, 64, period=8))
    smooth = DiffusionPredictor()
    # Padding (excluded) pixels carry no truth: a ring lying wholly on them says nothing, so the errors are 0.
    assert ring_errors([smooth], image, hole, torch.zeros_like(hole)) == [0.0]
    errors = ring_errors([smooth, PatchFillPredictor()], image, hole, torch.ones_like(hole))
    assert errors[0] > 2 * errors[1] > 0
    assert choose_predictor([smooth], image, hole, torch.zeros_like(hole)) is smooth
    assert choose_predictor([], image, hole, torch.zeros_like(hole)) is None
    # A candidate exact on the real pixels and wrong on the padding scores zero: padding is never judged.
    padding = torch.zeros_like(hole)
    padding[..., :, 32:] = 1
    assert ring_errors([RightOnTheLeft()], image, hole, 1 - padding) == [0.0]
    assert ring_errors([RightOnTheLeft()], image, hole, torch.ones_like(hole))[0] > 0.1


class RightOnTheLeft:
    """Predicts the true pixels in the left half of the image and black in the right half."""

    preferred_side = 0
    smooth_prior = True

    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        predicted = image.clone()
        predicted[..., :, 32:] = 0
        return predicted


@pytest.mark.weights  # the network's encoder is VGG-19's
def test_the_network_option_offers_the_network_first_and_the_patches_as_the_alternative():
    names = [type(p).__name__ for p in make_predictors("network")]
    assert names == ["NetworkPredictor", "PatchFillPredictor"]
    assert make_predictors("none") == []
