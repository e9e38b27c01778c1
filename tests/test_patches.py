"""Neural patch matching: candidates come only from the known region, and the best match is found."""

import torch

from engine.patches import PatchBank, cells_touching, patch_footprint


def test_no_candidate_patch_overlaps_the_hole():
    torch.manual_seed(0)
    features = torch.randn(1, 16, 20, 24)
    hole = torch.zeros(20, 24, dtype=torch.bool)
    hole[6:13, 8:17] = True
    bank = PatchBank(features, hole, stride=1)
    touched = patch_footprint(hole)
    rows, cols = bank.centres[:, 0], bank.centres[:, 1]
    assert len(bank) > 0
    assert not touched[rows, cols].any()
    # The query features are the ones a hole full of noise makes: the answers must still all be known patches.
    match = bank.match(torch.randn(1, 16, 20, 24), hole)
    assert match.query.shape[0] == int(touched.sum())
    assert not touched[match.source[:, 0], match.source[:, 1]].any()


def test_matching_finds_the_patch_it_was_given():
    torch.manual_seed(1)
    features = torch.randn(1, 8, 16, 16)
    hole = torch.zeros(16, 16, dtype=torch.bool)
    hole[6:10, 6:10] = True
    bank = PatchBank(features, hole, stride=1)
    # Paste a known patch, scaled (cosine similarity ignores scale), into the hole's centre.
    query = features.clone()
    query[..., 7:10, 7:10] = 3 * features[..., 1:4, 12:15]
    match = bank.match(query, hole)
    centre = ((match.query[:, 0] == 8) & (match.query[:, 1] == 8)).nonzero()[0, 0]
    assert match.source[centre].tolist() == [2, 13]


def test_stride_thins_candidates_but_never_below_what_small_crops_need():
    features = torch.randn(1, 4, 64, 64)
    hole = torch.zeros(64, 64, dtype=torch.bool)
    hole[20:40, 20:40] = True
    dense, sparse = PatchBank(features, hole, stride=1), PatchBank(features, hole, stride=2)
    assert len(sparse) < len(dense) / 3
    small = torch.zeros(12, 12, dtype=torch.bool)
    small[4:8, 4:8] = True
    assert len(PatchBank(torch.randn(1, 4, 12, 12), small, stride=2)) == len(PatchBank(
        torch.randn(1, 4, 12, 12), small, stride=1))


def test_target_is_the_average_of_overlapping_matches():
    features = torch.zeros(1, 1, 10, 10)
    features[..., :, 5:] = 1.0  # left half 0, right half 1
    hole = torch.zeros(10, 10, dtype=torch.bool)
    hole[4:6, 4:6] = True
    match = PatchBank(features, hole, stride=1).match(features, hole)
    assert match.covered.sum() > 0
    assert float(match.target.min()) >= 0.0 and float(match.target.max()) <= 1.0


def test_cells_touching_marks_any_pixel_of_a_block():
    pixels = torch.zeros(1, 1, 16, 16)
    pixels[0, 0, 9, 3] = 1
    cells = cells_touching(pixels, 4)
    assert cells.shape == (4, 4)
    assert cells.nonzero().tolist() == [[2, 0]]
