"""The realism of a fill, with no original: how close the fill's patches come to real patches of the same photo
(its known pixels), against how close real patches come to each other.

Every 8x8 patch at least half in the hole (on a 4 px grid) is compared with the patches wholly outside it (on the
same grid), and so is every known patch around the hole (`around`: as many as `YARDSTICK`, evenly spread), never
with a patch that overlaps it. Two patches differ by their squared colour distance over twice the geometric mean
of their detail energies (each patch's squared deviation from its own mean colour) plus a floor. Not the plain
distance: a flat block or a ghost (two structures averaged, each at half contrast) lies nearer its real neighbours
than real patches lie to each other, because an average is nearer every member than the members are to one
another; over the geometric mean, a patch that lost its contrast is far from every textured one (and still near
a real smooth patch).

realism = mean nearest difference of the hole's patches / that of the known patches around it. About 1 for a fill
whose patches are as like the photo's as its own are to each other (the original's hole scores about 1, give or
take the photo: 0.8-1.3 on the first photos); over 1 for ghosts, flat blocks of a colour the photo does not have,
and seams; under 1 where a fill copies known patches whole. Lower is better. A smudge or a blur can score under 1
in a photo with smooth parts of its colours (its patches are real there): read it with the gradient ratio and the
texture match, which see a smooth hole in a textured surround.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import distance_transform_edt

PATCH = 8
STRIDE = 4  # px between the patches compared, in the hole and outside it
OVERLAP = range(-(PATCH // STRIDE) + 1, PATCH // STRIDE)  # grid steps at which two patches overlap
YARDSTICK = 512  # known patches whose nearest differences set the scale, evenly spread around the hole
FEWEST = 64  # fewer known patches than this around the hole: the yardstick takes them from anywhere
MOST = 1024  # hole patches at most, evenly spread: a few hundred ms on a 512 px crop
FLOOR = (0.03 * 255) ** 2 * PATCH * PATCH * 3  # SSIM's C2 for each value: flat patches differ against it
CHUNK = 256  # queries per matrix product


def realism(result: np.ndarray, hole: np.ndarray) -> float:
    """`result` (uint8 HxWx3) filled in `hole` (bool HxW): see the module. nan when the hole or the known pixels
    hold no patch."""
    hole = np.asarray(hole, bool)
    height, width = hole.shape
    if min(height, width) < PATCH:
        return math.nan
    ys, xs = (grid.ravel() for grid in np.mgrid[0:height - PATCH + 1:STRIDE, 0:width - PATCH + 1:STRIDE])
    share = sliding_window_view(hole, (PATCH, PATCH))[ys, xs].mean(axis=(1, 2))
    known, filled = np.flatnonzero(share == 0), np.flatnonzero(share >= 0.5)
    if not known.size or not filled.size:
        return math.nan
    windows = sliding_window_view(np.asarray(result, np.float32), (PATCH, PATCH), axis=(0, 1))
    patches = windows[ys, xs].reshape(ys.size, -1)
    cells = np.stack([ys, xs], axis=1) // STRIDE
    candidates = _Candidates(patches[known], cells[known], (int(cells[:, 0].max()) + 1, int(cells[:, 1].max()) + 1))
    yardstick = around(hole, known, ys, xs)
    scale = _finite_mean(candidates.nearest(patches[yardstick], cells[yardstick]))
    filled = filled[_evenly(filled.size, MOST)]
    if not scale > 0:
        return math.nan
    return _finite_mean(candidates.nearest(patches[filled], cells[filled])) / scale


def around(hole: np.ndarray, known: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The known patches (indices into ys, xs) that set the scale: those centred within half the square root of
    the hole's area of it (at least a patch), what the fill should look like; all of them when too few are."""
    depth = distance_transform_edt(~hole)[ys[known] + PATCH // 2, xs[known] + PATCH // 2]
    near = known[depth <= max(PATCH, math.sqrt(hole.sum()) / 2)]
    chosen = near if near.size >= FEWEST else known
    return chosen[_evenly(chosen.size, YARDSTICK)]


def _evenly(count: int, most: int) -> np.ndarray:
    return np.arange(count) if count <= most else np.linspace(0, count - 1, most).round().astype(int)


def _finite_mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]  # inf: every candidate overlapped the patch
    return float(values.mean()) if values.size else math.nan


class _Candidates:
    """The known patches to search: values, squared norms, detail energies, and which one sits on each grid cell."""

    def __init__(self, values: np.ndarray, cells: np.ndarray, shape: tuple[int, int]) -> None:
        self.values = values
        self.norms = np.einsum("ij,ij->i", values, values)
        self.details = _detail(values)
        self.column = np.full(shape, -1, np.int64)  # -1: no candidate there
        self.column[cells[:, 0], cells[:, 1]] = np.arange(len(cells))

    def nearest(self, values: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Each query's least difference to a candidate that does not overlap it (inf when all do)."""
        norms, details = np.einsum("ij,ij->i", values, values), _detail(values)
        steps = np.array([(dy, dx) for dy in OVERLAP for dx in OVERLAP])
        out = np.empty(len(values), np.float64)
        for start in range(0, len(values), CHUNK):
            part = slice(start, start + CHUNK)
            squared = norms[part, None] + self.norms[None, :] - 2 * (values[part] @ self.values.T)
            difference = np.maximum(squared, 0) / (2 * np.sqrt(details[part, None] * self.details[None, :]) + FLOOR)
            around = cells[part, None, :] + steps[None]
            on_grid = ((around >= 0) & (around < self.column.shape)).all(axis=2)
            rows = np.broadcast_to(np.arange(len(difference))[:, None], on_grid.shape)[on_grid]
            columns = self.column[around[on_grid][:, 0], around[on_grid][:, 1]]
            difference[rows[columns >= 0], columns[columns >= 0]] = np.inf
            out[part] = difference.min(axis=1)
        return out


def _detail(values: np.ndarray) -> np.ndarray:
    """Squared deviation of each flattened patch (3 x PATCH x PATCH, channels first) from its own mean colour."""
    channels = values.reshape(len(values), 3, -1)
    return ((channels - channels.mean(axis=2, keepdims=True)) ** 2).sum(axis=(1, 2))
