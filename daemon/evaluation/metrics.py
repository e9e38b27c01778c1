"""Scores of a filled image against the original, in the hole only: L1 and L2 error in %, PSNR, SSIM, the
perceptual distance (daemon/evaluation/perceptual.py) and the gradient ratio; and the texture match and the realism
(daemon/evaluation/realism.py), which need no original (for real object removal)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
from scipy.ndimage import binary_dilation

from .realism import realism

SSIM_SIGMA, SSIM_RADIUS = 1.5, 5  # an 11x11 Gaussian window, as Wang et al. 2004 (and skimage's gaussian_weights)
SSIM_K1, SSIM_K2 = 0.01, 0.03
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601
RATIOS = ("gradient_ratio", "texture_match", "realism")
METRICS = ("l1", "l2", "psnr", "ssim", "perceptual", "gradient_ratio", "texture_match", "realism")


def hole_scores(result: np.ndarray, original: np.ndarray, hole: np.ndarray,
                perceptual: Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None = None) -> dict[str, float]:
    """Scores of `result` against `original` (uint8 HxWx3) in the hole only.

    l1: mean absolute error over the hole's pixels and channels, % of 255. l2: mean squared error / 255^2 x 100
    (Yang et al.'s Table 1). psnr: 10 log10(255^2 / MSE) over the hole, dB (inf when identical). ssim: see
    `ssim_in_box`. perceptual: `perceptual(result, original, hole)` when given (nan otherwise). gradient_ratio,
    texture_match and realism: see their functions.
    """
    hole = np.asarray(hole, bool)
    if not hole.any():
        raise ValueError("the hole is empty: nothing to score")
    diff = result.astype(np.float64)[hole] - original.astype(np.float64)[hole]
    mse = float(np.mean(diff ** 2))
    return {
        "l1": float(np.mean(np.abs(diff))) / 255 * 100,
        "l2": mse / 255 ** 2 * 100,
        "psnr": psnr(mse),
        "ssim": ssim_in_box(result, original, hole),
        "perceptual": math.nan if perceptual is None else float(perceptual(result, original, hole)),
        "gradient_ratio": gradient_ratio(result, original, hole),
        "texture_match": texture_match(result, hole),
        "realism": realism(result, hole),
    }


def psnr(mse: float, peak: float = 255.0) -> float:
    """10 log10(peak^2 / MSE) in dB; inf when the MSE is 0."""
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


def hole_psnr(result: np.ndarray, original: np.ndarray, hole: np.ndarray) -> float:
    """PSNR over the hole's pixels and channels of two 8-bit images (hole: HxW, true or nonzero inside)."""
    hole = np.asarray(hole, bool)
    diff = result.astype(np.float64)[hole] - original.astype(np.float64)[hole]
    return psnr(float(np.mean(diff ** 2)))


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """HxW: the length of the luma gradient at each pixel (forward differences, the last row and column
    repeated), in 0..255 units."""
    grey = _grey(image)
    dy = np.diff(grey, axis=0, append=grey[-1:])
    dx = np.diff(grey, axis=1, append=grey[:, -1:])
    return np.sqrt(dx ** 2 + dy ** 2)


def gradient_ratio(result: np.ndarray, original: np.ndarray, hole: np.ndarray) -> float:
    """Mean gradient magnitude in the hole, the fill's over the original's: 1 is the original's sharpness, a
    blur is under 0.5, noise over 1.5 (nan when the original is flat there)."""
    hole = np.asarray(hole, bool)
    truth = float(gradient_magnitude(original)[hole].mean())
    return math.nan if truth == 0 else float(gradient_magnitude(result)[hole].mean()) / truth


def ring(hole: np.ndarray, width: int | None = None) -> np.ndarray:
    """Known pixels within `width` of the hole (8-connected steps), leaving out the one next to it, whose
    gradient reaches into the fill. The default width, a quarter of the square root of the hole's area (at least
    8 px), is 16 px around a 64 px square and 64 px around a 256 px one."""
    hole = np.asarray(hole, bool)
    if width is None:
        width = max(8, round(math.sqrt(hole.sum()) / 4))
    grown = binary_dilation(hole, iterations=width, structure=np.ones((3, 3), bool))
    return grown & ~binary_dilation(hole, structure=np.ones((3, 3), bool))


def texture_match(result: np.ndarray, hole: np.ndarray) -> float:
    """Mean gradient magnitude in the hole over that of a ring of known pixels around it (`ring`): a
    no-reference check that the fill is as textured as its surroundings, for real removals where there is no
    original. About 1 for a fill that matches; a smudge scores well under (nan when the ring is flat or empty)."""
    hole = np.asarray(hole, bool)
    around = ring(hole)
    magnitude = gradient_magnitude(result)
    outside = float(magnitude[around].mean()) if around.any() else 0.0
    return math.nan if outside == 0 else float(magnitude[hole].mean()) / outside


def hole_box(hole: np.ndarray, minimum: int = 2 * SSIM_RADIUS + 1) -> tuple[slice, slice]:
    """The hole's bounding box, grown about its centre (inside the image) to at least `minimum` a side."""
    rows, cols = np.nonzero(hole)
    box = []
    for low, high, size in ((rows.min(), rows.max() + 1, hole.shape[0]), (cols.min(), cols.max() + 1, hole.shape[1])):
        if high - low < minimum:
            low = max(0, min(int((low + high - minimum) // 2), size - minimum))
            high = min(size, low + minimum)
        box.append(slice(int(low), int(high)))
    return box[0], box[1]


def ssim_in_box(result: np.ndarray, original: np.ndarray, hole: np.ndarray) -> float:
    """SSIM on the grey (BT.601 luma) images within the hole's bounding box: the mean over every 11x11 Gaussian
    window (sigma 1.5) lying wholly inside the box, K1 0.01, K2 0.03, range 255. For a centre hole the box is the
    hole itself; for strokes it holds known pixels too, which raise the score."""
    rows, cols = hole_box(np.asarray(hole, bool))
    return ssim(_grey(result[rows, cols]), _grey(original[rows, cols]))


def _grey(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float64)
    return image @ LUMA if image.ndim == 3 else image


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean structural similarity of two grey float images (Wang et al. 2004), Gaussian-weighted statistics over
    the windows that fit wholly inside the images (as skimage's structural_similarity with gaussian_weights=True,
    use_sample_covariance=False)."""
    taps = np.exp(-0.5 * (np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1) / SSIM_SIGMA) ** 2)
    taps /= taps.sum()
    size = taps.size
    if min(a.shape) < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size} pixels")

    def blur(x: np.ndarray) -> np.ndarray:
        x = np.lib.stride_tricks.sliding_window_view(x, size, axis=0) @ taps
        return np.lib.stride_tricks.sliding_window_view(x, size, axis=1) @ taps

    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def summarise(values: Iterable[dict[str, float]]) -> dict[str, float]:
    """Means over images of each metric and of the seconds, and n. PSNR is the mean of the per-image PSNR (inf
    when any image came back exact). The ratios are geometric means over the images where they are defined (a
    ratio of 2 and one of 0.5 average to 1), nan when none is."""
    rows = list(values)
    summary: dict[str, float] = {"n": len(rows)}
    for key in (*METRICS, "seconds"):
        numbers = np.array([row.get(key, math.nan) for row in rows], float)
        if key in RATIOS:
            numbers = numbers[np.isfinite(numbers) & (numbers > 0)]
            summary[key] = float(np.exp(np.log(numbers).mean())) if numbers.size else math.nan
        else:
            summary[key] = float(np.mean(numbers)) if rows else math.nan
    return summary
