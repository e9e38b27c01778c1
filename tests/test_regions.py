"""Crops around holes: context, image borders, merging, and cost that follows the hole."""

import numpy as np

from engine.regions import MIN_CROP, Box, crop_boxes


def test_hole_sits_in_the_middle_half_of_its_crop():
    hole = np.zeros((1000, 1000), bool)
    hole[400:600, 450:650] = True
    (crop,) = crop_boxes(hole, context=0.5, min_context=32)
    assert (crop.height, crop.width) == (400, 400)
    assert crop.top <= 400 - 100 and crop.bottom >= 600 + 100
    assert crop.left <= 450 - 100 and crop.right >= 650 + 100


def test_crop_stays_inside_the_image_and_keeps_its_context_by_shifting():
    hole = np.zeros((300, 300), bool)
    hole[0:40, 280:300] = True
    (crop,) = crop_boxes(hole, context=0.5, min_context=32)
    assert crop.top == 0 and crop.right == 300
    assert crop.height >= MIN_CROP and crop.width >= MIN_CROP


def test_separate_holes_get_separate_crops_and_close_ones_are_merged():
    hole = np.zeros((1000, 1000), bool)
    hole[100:130, 100:130] = True
    hole[800:830, 800:830] = True
    assert len(crop_boxes(hole, 0.5, 32)) == 2
    hole[140:170, 140:170] = True  # close to the first: one crop around both
    crops = crop_boxes(hole, 0.5, 32)
    assert len(crops) == 2
    assert any(c.top <= 100 and c.bottom >= 170 for c in crops)
    assert not crops[0].overlaps(crops[1])


def test_crop_size_does_not_depend_on_the_photo_size():
    small, large = np.zeros((300, 300), bool), np.zeros((3000, 4000), bool)
    small[100:200, 100:200] = True
    large[1400:1500, 2000:2100] = True
    (a,), (b,) = crop_boxes(small, 0.5, 32), crop_boxes(large, 0.5, 32)
    assert (a.height, a.width) == (b.height, b.width)


def test_box_geometry():
    a, b = Box(0, 0, 10, 10), Box(5, 5, 20, 20)
    assert a.overlaps(b) and not a.overlaps(Box(10, 10, 12, 12))
    assert a.union(b) == Box(0, 0, 20, 20)
