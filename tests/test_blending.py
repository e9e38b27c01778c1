"""The copying stage's building blocks on their own: the filters, patch voting and the gradient-domain solve."""

from __future__ import annotations

import math

import torch

from engine.filters import forward_differences, gaussian_blur, normalised_blur
from engine.poisson import screen_for, screened_poisson
from engine.voting import vote_windows


def image(seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def square_hole(size: int = 32, low: int = 10, high: int = 22) -> torch.Tensor:
    hole = torch.zeros(1, 1, size, size)
    hole[..., low:high, low:high] = 1
    return hole


def test_a_blur_keeps_a_constant_and_the_mean_and_removes_fine_detail():
    x = image()
    blurred = gaussian_blur(x, 2.0)
    assert torch.allclose(gaussian_blur(torch.full_like(x, 0.3), 2.0), torch.full_like(x, 0.3))
    assert abs(float(blurred.mean() - x.mean())) < 0.01
    assert float(blurred.std()) < 0.5 * float(x.std())
    assert torch.equal(gaussian_blur(x, 0.0), x)


def test_a_normalised_blur_never_lets_the_hole_leak_in():
    x = torch.full((1, 3, 32, 32), 0.5)
    hole = square_hole()
    x = x + hole * 1000  # the hole's values are garbage
    assert torch.allclose(normalised_blur(x, 1 - hole, 3.0), torch.full_like(x, 0.5), atol=1e-4)


def test_forward_differences_are_zero_at_the_last_column_and_row():
    x = image()
    dx, dy = forward_differences(x)
    assert torch.equal(dx[..., :, -1], torch.zeros_like(dx[..., :, -1]))
    assert torch.equal(dy[..., -1, :], torch.zeros_like(dy[..., -1, :]))
    assert torch.allclose(dx[..., 3, 5], x[..., 3, 6] - x[..., 3, 5])


def test_the_poisson_solve_rebuilds_a_hole_from_its_own_gradients_and_keeps_the_known_pixels():
    target = image(1)
    hole = square_hole()
    start = target * (1 - hole) + 0.5 * hole
    dx, dy = forward_differences(target)
    anchor = gaussian_blur(target, 8.0)  # only coarse shading, as the content prediction gives
    solved = screened_poisson(start, hole, dx, dy, anchor=anchor, lam=screen_for(64), iterations=200)
    assert torch.equal(solved * (1 - hole), start * (1 - hole))
    assert float((solved - target).abs().max()) < 0.02


def test_with_no_gradients_the_solve_is_a_smooth_membrane_continuing_the_border():
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    hole = square_hole()
    start = ramp * (1 - hole)
    zero = torch.zeros_like(ramp)
    solved = screened_poisson(start, hole, zero, zero, anchor=zero, lam=0.0, iterations=300)
    assert float((solved - ramp).abs().max()) < 0.01  # harmonic: a linear border gives the linear ramp


def test_the_screen_hands_over_at_the_wavelength_asked_for():
    assert screen_for(2 * math.pi) == 1.0
    assert screen_for(32) > screen_for(64)


def test_voting_the_identity_field_gives_back_the_source_and_a_shifted_field_shifts_it():
    source, cell = image(2), 4
    usable = torch.ones(1, 1, 32, 32)
    grid = torch.stack(torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij"), -1).view(-1, 2)
    same = torch.cat([torch.zeros(64, 1, dtype=torch.long), grid], 1)
    values, weight = vote_windows(source, usable, grid, same, cell, (32, 32))
    assert bool((weight > 0).all())
    assert torch.allclose(values, source, atol=1e-5)
    keep = grid[:, 1] < 7
    shifted = same[keep].clone()
    shifted[:, 2] += 1  # every cell copies the cell to its right
    values, weight = vote_windows(source, usable, grid[keep], shifted, cell, (32, 32))
    assert torch.allclose(values[..., 4:28, 4:24], source[..., 4:28, 8:28], atol=1e-5)


def test_voting_never_copies_an_unusable_pixel():
    source, cell = image(3), 4
    usable = torch.ones(1, 1, 32, 32)
    usable[..., :, 16:] = 0
    source = source + (1 - usable) * 1000
    grid = torch.stack(torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij"), -1).view(-1, 2)
    same = torch.cat([torch.zeros(64, 1, dtype=torch.long), grid], 1)
    values, weight = vote_windows(source, usable, grid, same, cell, (32, 32))
    assert float(values.max()) <= 1.0
    assert torch.equal(weight[..., :, 18:], torch.zeros_like(weight[..., :, 18:]))
