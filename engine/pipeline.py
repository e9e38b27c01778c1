"""fill(): the one entry point of the engine, from a photo and a mask to the filled photo.

It checks the input, cuts one crop around each hole, brings each crop to the working size (never above its native
size), runs the multi-scale synthesis, brings the result back to native resolution with detail from the photo,
and blends it in through the mask so that known pixels come back bit-identical.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from scipy.ndimage import distance_transform_edt

from .content import push_pull_fill
from .content_choice import make_predictors
from .detail import transfer_detail
from .device import configure_cpu, resolve_device, resolve_precision
from .errors import ImageError, MaskError, WeightsError
from .options import FillOptions, get_preset
from .progress import CancelCheck, ProgressCallback, Reporter
from .regions import crop_boxes
from .resample import hole_at
from .synthesis import ALIGN, MIN_SIDE, PIXEL_DEPTH, CropSynthesis, Plan
from .vgg import load_vgg

SAMPLE_TYPES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}
MIN_IMAGE_SIDE = 16
FLOAT_SLACK = 1e-4  # far above float32 rounding (6e-8 at 1.0), far below an 8-bit step (4e-3)


def fill(image: np.ndarray, mask: np.ndarray, options: FillOptions | None = None,
         progress: ProgressCallback | None = None, cancel: CancelCheck | None = None,
         source: np.ndarray | None = None) -> np.ndarray:
    """Fill the masked part of `image` and return a new array of the same shape and dtype.

    image: HxW, HxWx1, HxWx2 (grey+alpha), HxWx3 or HxWx4 (alpha last); uint8, uint16 or float32 (0..1).
    mask: HxW (or HxWx1), same height and width; 0 = keep, 1 (255 / 65535 for integer masks) = fill,
    between = blend (a feathered selection). True/False masks work too.
    source: None (copy from anywhere), or HxW where the fill may copy from (True, or over half of full scale);
    elsewhere it never copies from, as from fully transparent pixels. Those pixels themselves are kept.
    Raises MaskError / ImageError / OptionsError for bad input, Cancelled when `cancel()` answers True,
    WeightsError when the VGG-19 weights have not been fetched.
    """
    options = options or get_preset("default")
    options.check_work()
    reporter = Reporter(progress, cancel)
    scale_max = check_image(image)
    amount = normalise_mask(mask, image.shape[:2])
    if no_known_pixels(image, amount):
        raise MaskError("the mask covers the whole image: there are no known pixels left to copy from")
    excluded = None if source is None else excluded_from(source, amount)

    device = resolve_device(options.device)
    if device.type == "cpu":
        configure_cpu(options.threads)
    torch.manual_seed(options.seed)
    reporter.report("prepare", 0.0)
    precision = resolve_precision(options.precision, device)
    synthesis = CropSynthesis(load_vgg(device), options, make_predictors(options.content, device, precision),
                              check_cancel=reporter.check_cancel, precision=precision)

    # Only the crops are converted to floats and worked on: a 50-megapixel photo with a small hole costs what
    # a small photo does, in time and in memory.
    result = image.copy()
    boxes = crop_boxes(amount > 0, options.context, options.min_context)
    # A caller's autocast would put the pixels and the matching in reduced precision too: only the network passes
    # take it, as `precision` says (engine/device.py).
    with torch.autocast(device.type, enabled=False):
        for number, box in enumerate(boxes):
            region = RegionProgress(reporter, number, len(boxes))
            synthesis.progress = region
            original = image[box.slices]
            colour, alpha = split_channels(original.astype(np.float32) / scale_max)
            crop_amount = amount[box.slices]
            # Fully transparent pixels carry no colour worth copying: synthesise them too, but only write the hole.
            synthesise = crop_amount > 0 if alpha is None else (crop_amount > 0) | (alpha == 0)
            if excluded is not None:  # never copied from, the same way
                synthesise = synthesise | excluded[box.slices]
            own = crop_options(options, synthesise)
            with synthesis.using(own):
                filled = fill_crop(synthesis, colour, synthesise, own, device, region)
            result[box.slices] = blend(original, scale_max, filled, alpha, crop_amount)
    reporter.report("done", 1.0)
    return result


def preload(options: FillOptions, device: torch.device | None = None, kernels: bool = True) -> WeightsError | None:
    """Load what a fill with `options` will need (VGG-19 and the content network on its device, and with `kernels`
    the compiled pixel search) ahead of it. VGG-19 failing to load is raised: no fill can run. The content network's
    error is returned: only the fills that need it fail, again, with that message."""
    from .pixel_search import compile_now

    device = device if device is not None else resolve_device(options.device)
    load_vgg(device)
    if kernels:
        compile_now()
    try:
        make_predictors(options.content, device)
    except WeightsError as error:
        return error
    return None


def no_known_pixels(image: np.ndarray, amount: np.ndarray) -> bool:
    known = amount == 0
    if image.ndim == 3 and image.shape[2] in (2, 4):
        known &= image[..., -1] > 0
    return not known.any()


def check_image(image: np.ndarray) -> float:
    """The sample type's full-scale value; ImageError for shapes and types the engine does not handle."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"the image must be a numpy array, not {type(image).__name__}")
    if image.dtype not in SAMPLE_TYPES:
        raise ImageError(f"unsupported sample type {image.dtype}: use uint8, uint16 or float32")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ImageError(f"unsupported image shape {image.shape}: expected HxW or HxWxC with C in 1..4")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise ImageError(f"the image is {image.shape[1]}x{image.shape[0]}: both sides must be at least "
                         f"{MIN_IMAGE_SIDE} pixels")
    if image.dtype == np.float32:
        check_unit_range(image, "image", ImageError)
    return SAMPLE_TYPES[image.dtype]


def check_unit_range(values: np.ndarray, what: str, error: type[Exception]) -> None:
    """Float samples must be finite and within 0..1, their declared range: 1e19 overflows the synthesis into a hole
    of NaN, and 2.0 would be clipped without a word. Colour conversions (GEGL's, in GIMP) may leave samples a rounding
    error outside: up to FLOAT_SLACK beyond either end is let through."""
    low, high = float(values.min()), float(values.max())  # NaN propagates through both; no HxW temporary
    if not (math.isfinite(low) and math.isfinite(high)):
        raise error(f"the {what} has NaN or infinite samples")
    if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:
        raise error(f"the {what}'s float samples must lie within 0..1, but they reach from {low:.4g} to {high:.4g}: "
                    "scale or clip it to 0..1 first")


def normalise_mask(mask: np.ndarray, shape: tuple[int, int], what: str = "mask", empty_ok: bool = False) -> np.ndarray:
    """Any supported mask -> float32 HxW in 0..1; MaskError for a wrong size, an empty mask or bad values."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != tuple(shape):
        got = "x".join(str(s) for s in mask.shape[1::-1]) if mask.ndim >= 2 else str(mask.shape)
        raise MaskError(f"the {what} is {got} but the image is {shape[1]}x{shape[0]}: they must be the same size")
    if mask.dtype == bool:
        amount = mask.astype(np.float32)
    elif mask.dtype in (np.uint8, np.uint16):
        amount = mask.astype(np.float32) / np.iinfo(mask.dtype).max
    elif np.issubdtype(mask.dtype, np.floating):
        check_unit_range(mask, what, MaskError)
        amount = np.clip(mask.astype(np.float32), 0.0, 1.0)  # only rounding's FLOAT_SLACK is left to clip
    else:
        raise MaskError(f"unsupported {what} type {mask.dtype}: use bool, uint8, uint16 or float (0..1)")
    if not empty_ok and not (amount > 0).any():
        raise MaskError("the mask selects nothing: there is no hole to fill")
    return amount


def excluded_from(source: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """The known pixels the fill must not copy from: bool HxW from a source mask (what it may copy from)."""
    may = normalise_mask(source, amount.shape, what="source mask", empty_ok=True) > 0.5
    known = amount == 0
    if not (may & known).any():
        raise MaskError("the source mask leaves no known pixels to copy from: mark where the fill may copy from")
    return known & ~may


def split_channels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """HxWxC floats -> (HxWx3 colour, HxW alpha or None); grey is spread over three channels for VGG."""
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    alpha = image[..., -1] if channels in (2, 4) else None
    colour = image[..., :3] if channels >= 3 else np.repeat(image[..., :1], 3, axis=2)
    return np.ascontiguousarray(colour), alpha


class RegionProgress:
    """Maps (scale, iteration) inside one crop to the fill's overall fraction: regions share the bar equally,
    scales by their cost (iterations x pixels)."""

    def __init__(self, reporter: Reporter, number: int, count: int) -> None:
        self.reporter = reporter
        self.number, self.count = number, count
        self.starts, self.shares = [0.0], [1.0]

    def plan(self, plan: Plan) -> None:
        costs = [n * h * w for (h, w), n in plan]
        total = sum(costs) or 1
        self.starts = [sum(costs[:i]) / total for i in range(len(costs))]
        self.shares = [c / total for c in costs]

    def at(self, stage: str, within: float, **where: int) -> None:
        fraction = (self.number + within) / self.count
        self.reporter.report(stage, fraction, region=self.number, regions=self.count, **where)

    def iteration(self, scale: int, iteration: int, iterations: int) -> None:
        within = 0.05 + 0.9 * (self.starts[scale] + self.shares[scale] * iteration / max(1, iterations))
        self.at("synthesis", within, scale=scale + 1, scales=len(self.starts), iteration=iteration,
                iterations=iterations)


def working_shape(height: int, width: int, working_size: int) -> tuple[int, int]:
    """The crop's size at the finest scale: scaled down to the working size if bigger, aligned for VGG, never
    scaled up (small crops are padded to alignment instead)."""
    factor = min(1.0, working_size / max(height, width))
    if factor < 1.0:
        return (max(MIN_SIDE, int(round(height * factor / ALIGN)) * ALIGN),
                max(MIN_SIDE, int(round(width * factor / ALIGN)) * ALIGN))
    return (max(MIN_SIDE, -(-height // ALIGN) * ALIGN), max(MIN_SIDE, -(-width // ALIGN) * ALIGN))


def crop_options(options: FillOptions, hole: np.ndarray) -> FillOptions:
    """The options one crop is synthesised with: a narrow hole (no pixel deeper than PIXEL_DEPTH) in a crop bigger
    than the working size goes up to `narrow_size`, one scale more per doubling of the working size."""
    longest = max(hole.shape)
    if options.narrow_size <= options.working_size or longest <= options.working_size:
        return options
    if distance_transform_edt(hole).max() > PIXEL_DEPTH:
        return options
    doublings = min(math.ceil(math.log2(longest / options.working_size)),
                    int(math.log2(options.narrow_size / options.working_size)))
    if doublings < 1:
        return options
    return options.replace(working_size=options.working_size * 2 ** doublings, scales=options.scales + doublings)


def fill_crop(synthesis: CropSynthesis, colour: np.ndarray, hole: np.ndarray, options: FillOptions,
              device: torch.device, region: RegionProgress) -> np.ndarray:
    """Synthesise one crop (HxWx3 float, HxW bool hole) and return it at native size, hole filled; `options` are
    the crop's own (crop_options), those `synthesis` is using."""
    height, width = hole.shape
    native = torch.from_numpy(colour).permute(2, 0, 1)[None].to(device)
    native_hole = torch.from_numpy(hole)[None, None].to(device, torch.float32)
    size = working_shape(height, width, options.working_size)
    downscaled = size[0] < height or size[1] < width
    region.at("content", 0.0)
    if downscaled:
        work = F.interpolate(native, size=size, mode="area")
        work_hole = hole_at(native_hole, size)
        excluded = torch.zeros_like(work_hole)
    else:
        # Pad to alignment by repeating the border; padded pixels are never copied from.
        pad = (0, size[1] - width, 0, size[0] - height)
        work = F.pad(native, pad, mode="replicate")
        work_hole = F.pad(native_hole, pad)
        excluded = F.pad(torch.zeros_like(native_hole), pad, value=1.0)
    want_detail = downscaled and options.detail_transfer
    native_factor = max(height, width) / max(size) if downscaled else 1.0
    result = synthesis.run(work, work_hole, excluded, want_match=want_detail, native_factor=native_factor)
    if not downscaled:
        return result.image[0, :, :height, :width].permute(1, 2, 0).cpu().numpy()
    region.at("detail", 0.95)
    known = 1 - native_hole
    upsampled = F.interpolate(result.image, size=(height, width), mode="bicubic", align_corners=False)
    if want_detail and result.match is not None:
        guide = native * known + upsampled * native_hole
        upsampled = upsampled + transfer_detail(guide, known, size, result.match, result.match_stride)
    if options.detail_transfer and result.refine_native:
        # The synthesis's last copying from beside the hole, again at native size: the texture next to the border
        # is then the photo's own, not an enlarged copy.
        upsampled = synthesis.copy_from_beside(native * known + upsampled.clamp(0, 1) * native_hole, native_hole,
                                               known)
    return upsampled.clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()


def blend(image: np.ndarray, scale_max: float, filled: np.ndarray, alpha: np.ndarray | None,
          amount: np.ndarray) -> np.ndarray:
    """Composite the fill through the (soft) mask in the image's own layout and sample type (one crop)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels in (1, 2):
        filled = filled.mean(axis=2, keepdims=True)
    original = image.astype(np.float32).reshape(*image.shape[:2], channels) / scale_max
    parts = [filled]
    if alpha is not None:
        # Alpha in the hole continues the surrounding alpha (opaque around an opaque hole).
        known = torch.from_numpy((amount == 0).astype(np.float32))[None, None]
        spread = push_pull_fill(torch.from_numpy(alpha)[None, None], known)[0, 0].numpy()
        parts.append(spread[..., None])
    candidate = np.concatenate(parts, axis=2)
    weight = amount[..., None]
    mixed = original * (1 - weight) + candidate * weight
    if image.dtype != np.float32:
        mixed = np.round(np.clip(mixed, 0, 1) * scale_max)
    mixed = mixed.astype(image.dtype).reshape(image.shape)
    # Known pixels come back bit-identical, whatever the arithmetic above did to them.
    keep = amount == 0
    mixed[keep] = image[keep]
    return mixed
