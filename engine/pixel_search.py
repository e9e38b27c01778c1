"""The pixel PatchMatch's inner loops, compiled (numba): patch costs, random search and propagation.

Each query pixel keeps a source pixel; a round tries random shifts around it, then its neighbours' shifts, one half
of a checkerboard at a time, reading the shifts as the pass found them (so no two updates race and the result is
the same on any number of threads). Random shifts come from a hash of (seed, round, radius, query), not a stateful
generator, for the same reason. The arrays are numpy on the CPU: the search is branchy, per-pixel work that a
vectorised gather did at a fraction of the speed (docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

INF = np.float32(np.inf)
# The largest cost a search is asked to beat: finite, because fastmath assumes no arithmetic meets an infinity.
NO_LIMIT = np.float32(1e30)


@njit(cache=True, inline="always")
def mix(value: np.uint64) -> np.uint64:
    """splitmix64's finaliser: a well-spread 64-bit hash."""
    value = (value ^ (value >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    value = (value ^ (value >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return value ^ (value >> np.uint64(31))


@njit(cache=True, inline="always")
def _shift(seed: np.uint64, salt: int, radius: int) -> int:
    """A deterministic pseudo-random integer in [-radius, radius]."""
    value = mix(seed + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15))
    return int(value % np.uint64(2 * radius + 1)) - radius


@njit(cache=True, fastmath=True, inline="always")
def _cost(current, hole, source, valid, query_guide, source_guide, query_weight, q, qy, qx, ty, tx, radius,
          hole_weight, guide_weight, limit):
    """The colour distance of the query patch centred at (qy, qx) and the source patch at (ty, tx), plus the guide
    term; inf where the source may not be copied, or where it cannot come under `limit`. current, hole and source
    are padded by `radius` on each side; source's channels are sharp (3), blurred (3), usable (1). The query's
    synthesised pixels count hole_weight and are compared with the blurred source; a source's unusable pixels do
    not count."""
    if not valid[ty, tx]:
        return INF
    guide = np.float32(0.0)
    for channel in range(3):
        diff = query_guide[q, channel] - source_guide[ty, tx, channel]
        guide += diff * diff
    guide *= guide_weight
    # The weights never add up to more than the query's own (query_weight): a partial sum over that already
    # reaching the limit rules the source out, and most tries are ruled out within a few rows.
    bound = (min(limit, NO_LIMIT) - guide) * query_weight[q]
    if bound <= 0:
        return INF
    total = np.float32(0.0)
    weight = np.float32(0.0)
    for dy in range(-radius, radius + 1):
        if total >= bound:
            return INF
        for dx in range(-radius, radius + 1):
            a, b = qy + dy + radius, qx + dx + radius
            c, d = ty + dy + radius, tx + dx + radius
            w = (np.float32(1.0) - (np.float32(1.0) - hole_weight) * hole[a, b]) * source[c, d, 6]
            if w <= 0:
                continue
            base = 3 if w < 1 else 0
            s = np.float32(0.0)
            for channel in range(3):
                diff = current[a, b, channel] - source[c, d, base + channel]
                s += diff * diff
            total += w * s
            weight += w
    return total / max(weight, np.float32(1e-6)) + guide


@njit(cache=True, parallel=True, fastmath=True)
def costs(current, hole, source, valid, query_guide, source_guide, query_weight, qy, qx, sy, sx, radius,
          hole_weight, guide_weight):
    """Each query's cost at its given source."""
    out = np.empty(qy.shape[0], dtype=np.float32)
    for q in prange(qy.shape[0]):
        out[q] = _cost(current, hole, source, valid, query_guide, source_guide, query_weight, q, qy[q], qx[q],
                       sy[q], sx[q], radius, hole_weight, guide_weight, NO_LIMIT)
    return out


@njit(cache=True, parallel=True, fastmath=True)
def search(current, hole, source, valid, query_guide, source_guide, query_weight, qy, qx, index, sy, sx, best,
           number, radii, jumps, seed, radius, hole_weight, guide_weight):
    """Round `number` of random search (one try per radius) and propagation (per jump, a checkerboard half at a
    time, from the four neighbours that far); sy, sx and best are improved in place."""
    height, width = valid.shape
    low_y, high_y = radius, height - 1 - radius
    low_x, high_x = radius, width - 1 - radius
    count = qy.shape[0]
    for q in prange(count):
        for k in range(radii.shape[0]):
            r = radii[k]
            salt = ((number * radii.shape[0] + k) * count + q) * 2
            ty = min(max(sy[q] + _shift(seed, salt, r), low_y), high_y)
            tx = min(max(sx[q] + _shift(seed, salt + 1, r), low_x), high_x)
            if ty == sy[q] and tx == sx[q]:
                continue
            cost = _cost(current, hole, source, valid, query_guide, source_guide, query_weight, q, qy[q], qx[q],
                         ty, tx, radius, hole_weight, guide_weight, best[q])
            if cost < best[q]:
                sy[q], sx[q], best[q] = ty, tx, cost
    for jump in jumps:
        for half in range(2):
            # Neighbours a jump of 2 or 4 away are of the same half: all read the shifts as the pass found them.
            before_y, before_x = sy.copy(), sx.copy()
            for q in prange(count):
                y, x = qy[q], qx[q]
                if (y + x) % 2 != half:
                    continue
                for direction in range(4):
                    dy = jump if direction == 2 else (-jump if direction == 3 else 0)
                    dx = jump if direction == 0 else (-jump if direction == 1 else 0)
                    ny, nx = y + dy, x + dx
                    if ny < 0 or ny >= height or nx < 0 or nx >= width:
                        continue
                    neighbour = index[ny, nx]
                    if neighbour < 0:
                        continue
                    ty = min(max(before_y[neighbour] - dy, low_y), high_y)
                    tx = min(max(before_x[neighbour] - dx, low_x), high_x)
                    if ty == sy[q] and tx == sx[q]:  # a coherent neighbour proposes what the query has
                        continue
                    cost = _cost(current, hole, source, valid, query_guide, source_guide, query_weight, q, y, x,
                                 ty, tx, radius, hole_weight, guide_weight, best[q])
                    if cost < best[q]:
                        sy[q], sx[q], best[q] = ty, tx, cost


@njit(cache=True, parallel=True, fastmath=True)
def vote(image, usable, index, sy, sx, similarity, hy, hx, radius):
    """(n,3) colours for the pixels (hy, hx): the known pixels their covering patches' sources put there, weighted by
    how well each patch matched (similarity), or nan where none votes. image (H,W,3) unpadded."""
    height, width = usable.shape
    out = np.empty((hy.shape[0], 3), dtype=np.float32)
    for p in prange(hy.shape[0]):
        total0 = total1 = total2 = weight = np.float32(0.0)
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                # The patch centred at (y - dy, x - dx) covers this pixel at its offset (dy, dx).
                cy, cx = hy[p] - dy, hx[p] - dx
                if cy < 0 or cy >= height or cx < 0 or cx >= width:
                    continue
                centre = index[cy, cx]
                if centre < 0:
                    continue
                py = min(max(sy[centre] + dy, 0), height - 1)
                px = min(max(sx[centre] + dx, 0), width - 1)
                w = similarity[centre] * usable[py, px]
                total0 += image[py, px, 0] * w
                total1 += image[py, px, 1] * w
                total2 += image[py, px, 2] * w
                weight += w
        if weight > 0:
            out[p, 0], out[p, 1], out[p, 2] = total0 / weight, total1 / weight, total2 / weight
        else:
            out[p, 0] = out[p, 1] = out[p, 2] = np.nan
    return out


def compile_now() -> None:
    """Load the compiled kernels (compiling them the first time, a few seconds) on a tiny case, so that a daemon's
    first fill does not pay for it."""
    size, radius = 16, 2
    padded = np.zeros((size + 2 * radius, size + 2 * radius, 3), dtype=np.float32)
    hole = np.zeros(padded.shape[:2], dtype=np.float32)
    source = np.ones(padded.shape[:2] + (7,), dtype=np.float32)
    valid = np.ones((size, size), dtype=np.bool_)
    guide = np.zeros((size, size, 3), dtype=np.float32)
    at = np.array([size // 2], dtype=np.int64)
    index = np.full((size, size), -1, dtype=np.int64)
    index[size // 2, size // 2] = 0
    weight = np.ones(1, dtype=np.float32)
    best = costs(padded, hole, source, valid, guide[0], guide, weight, at, at, at.copy(), at.copy(), radius,
                 np.float32(0.1), np.float32(1.0))
    search(padded, hole, source, valid, guide[0], guide, weight, at, at, index, at.copy(), at.copy(), best, 0,
           np.array([1], dtype=np.int64), np.array([1], dtype=np.int64), np.uint64(0), radius, np.float32(0.1),
           np.float32(1.0))
    vote(guide, valid.astype(np.float32), index, at, at, np.ones(1, dtype=np.float32), at, at, radius)
