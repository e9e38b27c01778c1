"""The completion's inner loops, compiled (numba): patch distances, the PatchMatch search and the vote.

The search scans the queries in raster order and back, so an improvement carries on to the next pixel within the
same pass (PatchMatch's own propagation; a parallel checkerboard spreads a good shift one pixel per pass). It runs
on one thread, with random shifts drawn from a hash of (seed, counter): the same field on any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .pixel_search import mix


@njit(cache=True, fastmath=True)
def _distance(features, soft, hole, usable, ty, tx, sy, sx, radius, hole_weight, limit):
    """The squared distance of the level's patch at (ty, tx) and its patch at (sy, sx), over the channels of
    `features` (colour and its gradients). Target pixels off the image do not count; a source pixel off it or not usable
    costs the most a pixel can. The target's hole pixels, an estimate as soft as a vote, count `hole_weight` and
    are compared with the source blurred (`soft`): against sharp sources a soft estimate picks the calmest ones."""
    height, width, channels = features.shape
    total = 0.0
    for dy in range(-radius, radius + 1):
        yt, ys = ty + dy, sy + dy
        if yt < 0 or yt >= height:
            continue
        for dx in range(-radius, radius + 1):
            xt, xs = tx + dx, sx + dx
            if xt < 0 or xt >= width:
                continue
            if ys < 0 or ys >= height or xs < 0 or xs >= width or not usable[ys, xs]:
                total += channels
                continue
            if hole[yt, xt]:
                part = 0.0
                for c in range(channels):
                    e = features[yt, xt, c] - soft[ys, xs, c]
                    part += e * e
                total += hole_weight * part
            else:
                for c in range(channels):
                    e = features[yt, xt, c] - features[ys, xs, c]
                    total += e * e
        if total >= limit:
            return total
    return total


@njit(cache=True, fastmath=True)
def _try(features, soft, hole, usable, qy, qx, sy, sx, cost, k, cy, cx, radius, hole_weight):
    """Take the source centred at (cy, cx) for query k if it is usable and closer than the one it has."""
    height, width = usable.shape
    if cy < 0 or cy >= height or cx < 0 or cx >= width or not usable[cy, cx]:
        return
    if cy == sy[k] and cx == sx[k]:
        return
    d = _distance(features, soft, hole, usable, qy[k], qx[k], cy, cx, radius, hole_weight, cost[k])
    if d < cost[k]:
        cost[k], sy[k], sx[k] = d, cy, cx


@njit(cache=True, fastmath=True)
def minimise(features, soft, hole, usable, qy, qx, index, sy, sx, cost, passes, radius, hole_weight, seed):
    """PatchMatch on the field (sy, sx) of the queries (qy, qx), which are in raster order; index (H,W) gives
    each pixel's query number or -1. Each pass scans forward then back: the neighbour before in the scan offers
    its shift, then random shifts at halving reach are tried. cost receives each query's distance."""
    height, width = usable.shape
    n = qy.shape[0]
    for k in range(n):
        cost[k] = _distance(features, soft, hole, usable, qy[k], qx[k], sy[k], sx[k], radius, hole_weight,
                            np.inf)
    counter = np.uint64(0)
    for _ in range(passes):
        for direction in (1, -1):
            for step in range(n):
                k = step if direction == 1 else n - 1 - step
                y, x = qy[k], qx[k]
                if 0 <= y - direction < height and index[y - direction, x] >= 0:
                    j = index[y - direction, x]
                    _try(features, soft, hole, usable, qy, qx, sy, sx, cost, k, sy[j] + direction, sx[j],
                         radius, hole_weight)
                if 0 <= x - direction < width and index[y, x - direction] >= 0:
                    j = index[y, x - direction]
                    _try(features, soft, hole, usable, qy, qx, sy, sx, cost, k, sy[j], sx[j] + direction,
                         radius, hole_weight)
                reach = max(height, width) // 2
                while reach >= 1:
                    counter += np.uint64(1)
                    h = mix(seed + counter * np.uint64(0x9E3779B97F4A7C15))
                    oy = np.int64(h % np.uint64(2 * reach + 1)) - reach
                    ox = np.int64((h >> np.uint64(32)) % np.uint64(2 * reach + 1)) - reach
                    cy = min(max(sy[k] + oy, 0), height - 1)
                    cx = min(max(sx[k] + ox, 0), width - 1)
                    _try(features, soft, hole, usable, qy, qx, sy, sx, cost, k, cy, cx, radius, hole_weight)
                    reach //= 2


@njit(cache=True, fastmath=True)
def vote(qy, qx, sy, sx, weight, radius, factor, colours, usable, hole, modes, spread):
    """colours (H,W,3) with its hole rebuilt from the sources: each query's source patch laid over the query's
    place, weighted. factor 1 votes on the field's own level; 2 lays, for each pixel of a coarser field, the 2x2
    pixels under it from `colours`, the level twice the size (Wexler et al. 2007, section 3.2). Hole pixels no
    patch covers keep their colour. With `modes` > 0 the vote seeks the mode, not the mean (Wexler et al.'s mean
    shift): starting from the colour each pixel's own patch gives it, `modes` times the votes are weighed again by
    a Gaussian of deviation `spread` around the last estimate, so where two structures meet, a pixel takes one of
    them and never their mixture."""
    height, width = hole.shape
    estimate = colours.copy()
    own = np.zeros((height, width), np.bool_)
    if modes > 0:
        for k in range(qy.shape[0]):
            for u in range(factor):
                for v in range(factor):
                    ty, tx = factor * qy[k] + u, factor * qx[k] + v
                    ys, xs = factor * sy[k] + u, factor * sx[k] + v
                    if 0 <= ty < height and 0 <= tx < width and hole[ty, tx] and 0 <= ys < height \
                            and 0 <= xs < width and usable[ys, xs]:
                        for c in range(3):
                            estimate[ty, tx, c] = colours[ys, xs, c]
                        own[ty, tx] = True
    for _ in range(max(modes, 1)):
        total = np.zeros((height, width, 3))
        weights = np.zeros((height, width))
        for k in range(qy.shape[0]):
            w = weight[k]
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    for u in range(factor):
                        for v in range(factor):
                            ty, tx = factor * (qy[k] + dy) + u, factor * (qx[k] + dx) + v
                            ys, xs = factor * (sy[k] + dy) + u, factor * (sx[k] + dx) + v
                            if ty < 0 or ty >= height or tx < 0 or tx >= width or not hole[ty, tx]:
                                continue
                            if ys < 0 or ys >= height or xs < 0 or xs >= width or not usable[ys, xs]:
                                continue
                            kernel = w
                            if modes > 0 and own[ty, tx]:
                                distance = 0.0
                                for c in range(3):
                                    e = colours[ys, xs, c] - estimate[ty, tx, c]
                                    distance += e * e
                                kernel = w * np.exp(-distance / (2 * spread * spread))
                            for c in range(3):
                                total[ty, tx, c] += kernel * colours[ys, xs, c]
                            weights[ty, tx] += kernel
        for y in range(height):
            for x in range(width):
                if hole[y, x] and weights[y, x] > 0:
                    for c in range(3):
                        estimate[y, x, c] = total[y, x, c] / weights[y, x]
    return estimate
