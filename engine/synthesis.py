"""Multi-scale synthesis of one crop, coarse to fine, from the content network's prediction.

With `completion` on (the default and preview), a hole wider than a stroke is filled by patch completion
(engine/completion.py): the prediction steers which known pixels its coarsest level copies; every pixel of the fill
is a copy, and nothing here raises its detail or adds grain. Narrow holes, and every hole
with `completion` off (the `paper` preset), take the scales of multi-scale neural patch synthesis (Yang et al.,
CVPR 2017, section 3):
The first scale is the one the content prediction is made at and starts from it; each next scale starts from the
previous result upsampled. At each scale two stages run, either of which may be switched off by its count:
1. `iterations` of L-BFGS on the paper's joint loss, over the hole's pixels only (known pixels are fixed):
       content_weight * |relu4_2(x) - relu4_2(content reference)|^2 / N
     + texture_weight * sum over texture layers of |F(x) - matched known patches|^2 on the hole's patches
     + tv_weight * total variation
   (the `paper` preset: the reference's normalisation and parameters);
2. `vote_iterations` rounds of copying real known pixels along neural-patch matches, then a pixel-precise
   PatchMatch (engine/neural_em.py, engine/pixel_match.py): the default.
A hole no deeper than PIXEL_DEPTH, whose first scale is a quarter of the crop's own size or less, copies by the
pixel-precise PatchMatch alone at every scale, coarse to fine; otherwise a thin hole, every pixel of which the last
copying from beside reaches, skips the finest scale's copying.
After the copies, the fill's fine detail is raised to its surroundings' level (engine/texture_level.py), a last
PatchMatch at the crop's size copies from right beside the hole, and the detail is raised again; a smooth
prediction that was never copied into gets the photo's grain instead (engine/grain.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch
from scipy.ndimage import distance_transform_edt

from .completion import Completion
from .content import ContentPredictor, push_pull_fill, seamless
from .content_choice import choose_predictor
from .detail import pixel_field_match
from .device import one_thread, reduced_precision, torch_threads
from .grain import add_grain, missing_grain
from .neural_em import LAYER as EM_LAYER
from .neural_em import Field, NeuralEM, sharp_start
from .options import FillOptions
from .patches import Match, PatchBank, cells_touching
from .pixel_match import PixelMatch
from .reductions import total
from .resample import hole_at, resize, touched
from .texture_level import match_detail
from .vgg import LAYER_STRIDE, VGGFeatures

ALIGN = 8  # crop and window sizes are multiples of the deepest layer's stride, so cells line up across scales
MIN_SIDE = 64  # a scale smaller than this has too few relu4 cells to match patches
# Pixels of known context kept around the hole in the optimised window: covers the receptive field of the
# relu4 cells next to the hole, so the window's own border never reaches a cell the losses look at.
WINDOW_MARGIN = 48
CONTENT_LAYER = "relu4_2"
# px: how deep into the hole the last PatchMatch works; its search from each pixel's own place reaches no farther.
BESIDE = 32
# A hole no deeper than PIXEL_DEPTH px (at the crop's own resolution) copies by the pixel PatchMatch alone at every
# scale, when the first scale is at most PIXEL_FIRST of the crop's own size.
PIXEL_DEPTH = 64
PIXEL_FIRST = 0.25

Plan = list[tuple[tuple[int, int], int]]  # (size, L-BFGS iterations) per scale, coarse to fine


class SynthesisProgress(Protocol):
    def plan(self, plan: Plan) -> None:
        """The scales the crop will go through: told before the first iteration."""

    def iteration(self, scale: int, iteration: int, iterations: int) -> None: ...


class NoProgress:
    def plan(self, plan: Plan) -> None:
        pass

    def iteration(self, scale: int, iteration: int, iterations: int) -> None:
        pass


@dataclass
class CropResult:
    image: torch.Tensor  # (1,3,H,W) in 0..1
    match: Match | None  # finest-scale correspondence (query cells in crop coordinates), for detail transfer
    match_stride: int
    # Whether the native-size pass should copy from beside the hole again (engine/pipeline.py): not after a
    # completion, whose own pixels it would only average.
    refine_native: bool = True


def pyramid_sizes(height: int, width: int, scales: int) -> list[tuple[int, int]]:
    """Sizes coarse to fine, halving from the crop's own size, keeping only scales big enough to match patches."""
    sizes = [(height, width)]
    while len(sizes) < scales:
        h, w = sizes[0]
        h2, w2 = _align(h / 2), _align(w / 2)
        if min(h2, w2) < MIN_SIDE:
            break
        sizes.insert(0, (h2, w2))
    return sizes


def scale_plan(height: int, width: int, options: FillOptions, first_side: int = 0) -> Plan:
    """(size, L-BFGS iterations) per scale, coarse to fine, starting at the smallest scale at least `first_side`
    big: the scale the content prediction is made at. Scales coarser than the prediction would only blur it (a
    128 px crop predicted at 128 and optimised first at 64 came back softer than its prediction).

    The scales kept take the iteration counts of the coarsest ones: the first scale has the structure to settle,
    and a 128 px crop given only the finest scale's few iterations barely moved from its start."""
    sizes = pyramid_sizes(height, width, options.scales)
    sizes = [size for size in sizes if max(size) >= first_side] or sizes[-1:]
    return list(zip(sizes, options.iterations_per_scale()[:len(sizes)], strict=True))


def _align(value: float) -> int:
    return max(ALIGN, int(round(value / ALIGN)) * ALIGN)


def hole_window(hole: torch.Tensor, margin: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the hole's bounding box grown by `margin`, aligned to ALIGN, inside the crop."""
    height, width = hole.shape[-2:]
    rows = hole[0, 0].any(dim=1).nonzero()
    cols = hole[0, 0].any(dim=0).nonzero()
    top = max(0, (int(rows[0]) - margin) // ALIGN * ALIGN)
    left = max(0, (int(cols[0]) - margin) // ALIGN * ALIGN)
    bottom = min(height, -(-(int(rows[-1]) + 1 + margin) // ALIGN) * ALIGN)
    right = min(width, -(-(int(cols[-1]) + 1 + margin) // ALIGN) * ALIGN)
    return top, bottom, left, right


class CropSynthesis:
    """Runs the pyramid for one crop. The crop's height and width must be multiples of ALIGN."""

    def __init__(self, vgg: VGGFeatures, options: FillOptions, predictors: Sequence[ContentPredictor],
                 check_cancel: Callable[[], None], progress: SynthesisProgress | None = None,
                 precision: torch.dtype = torch.float32) -> None:
        """predictors: the content predictor candidates, the preferred first (engine/content_choice.py); none
        switches the content term off. precision: the dtype of the VGG-19 passes (engine/device.py)."""
        self.vgg = vgg
        self.precision = precision
        self.options = options
        self.predictors = tuple(predictors)
        self.predictor: ContentPredictor | None = None  # the one chosen for the crop being synthesised
        self.progress = progress or NoProgress()
        self.check_cancel = check_cancel
        self.layers = tuple(options.texture_layers)
        self.names = self.layers + ((CONTENT_LAYER,) if self.predictors else ())

    @contextmanager
    def using(self, options: FillOptions) -> Iterator[None]:
        """Synthesise with `options` inside the block (one crop's own, engine/pipeline.py crop_options)."""
        kept, self.options = self.options, options
        try:
            yield
        finally:
            self.options = kept

    def run(self, image: torch.Tensor, hole: torch.Tensor, excluded: torch.Tensor, want_match: bool,
            native_factor: float = 1.0) -> CropResult:
        """image (1,3,H,W) 0..1; hole (1,1,H,W) {0,1} pixels to synthesise; excluded: pixels never copied from;
        native_factor: how many times larger the crop is at its own resolution (1 when synthesised at it)."""
        opts = self.options
        # The pixel search's random shifts: seeded per crop, so a fill repeats whatever ran before it.
        self.generator = torch.Generator().manual_seed(opts.seed)
        self.pixel_sources: torch.Tensor | None = None
        self.predictor = choose_predictor(self.predictors, image, hole, excluded)
        # Between stages too: each may take a good part of a second on a big crop (Ctrl-C answers within one).
        self.check_cancel()
        plan = scale_plan(*image.shape[-2:], opts, first_side(self.predictor))
        votes = list(opts.vote_iterations_per_scale()[:len(plan)])
        # Strokes and narrow holes: pixel patches, from each pixel's own place at a quarter of the crop's size and
        # along the coarser field after, continue the border best, where neural matches left soft streaks. A first
        # scale at half the size is too fine for that: there neural matches keep a brick bond's phase, pixel
        # patches lost it (docs/quality.md).
        deepest = float(depth(hole).max())
        coarsest = max(plan[0][0]) / (max(image.shape[-2:]) * native_factor)
        self.pixel_only = coarsest <= PIXEL_FIRST and deepest * native_factor <= PIXEL_DEPTH
        if opts.completion and not self.pixel_only:
            return self._complete(image, hole, excluded, want_match, plan[0][0])
        if not self.pixel_only and len(votes) > 1 and opts.beside_iterations and deepest <= BESIDE:
            # A thin hole: the last copying from beside reaches every pixel of it at this size, and copying along
            # neural matches first only leaves soft streaks for it to follow (docs/quality.md).
            votes[-1] = 0
        self.progress.plan([(size, iterations + rounds) for (size, iterations), rounds in zip(plan, votes,
                                                                                               strict=True)])
        coarse_size = plan[0][0]
        coarse_image, coarse_hole = resize(image, coarse_size, "area"), hole_at(hole, coarse_size)
        prediction = self._predict(image, hole, coarse_size)
        self.check_cancel()
        current = push_pull_fill(coarse_image, 1 - coarse_hole) if prediction is None else prediction
        field, previous, copied = None, coarse_size, False
        for index, ((size, iterations), rounds) in enumerate(zip(plan, votes, strict=True)):
            self.check_cancel()
            level_image = resize(image, size, "area")
            level_hole = hole_at(hole, size)
            level_excluded = resize(excluded, size, "area") > 0
            known = 1 - level_hole
            usable = known * (~level_excluded).to(known.dtype)
            reference = None
            if prediction is not None:
                reference = self._put_in(level_image, known, resize(prediction, size))
            # The first level starts from the prediction itself: the reference, already put in.
            current = reference if index == 0 and reference is not None else \
                self._put_in(level_image, known, resize(current, size))
            if rounds and field is not None and size == tuple(2 * side for side in previous):
                current = sharp_start(current, level_hole, usable, opts.augment, field)
            previous = size
            current = self._optimise_scale(current * 255, level_hole, level_excluded,
                                           None if reference is None else reference * 255, index, iterations) / 255
            if rounds:
                current, field = self._copy(current, reference, level_hole, usable, index, iterations, rounds)
                copied = True
        usable = (1 - hole) * (1 - excluded)
        if copied:
            current = match_detail(current, hole, usable, opts.detail_gain)
            current = self.copy_from_beside(current, hole, usable)
        self.check_cancel()
        stride = LAYER_STRIDE[self._detail_layer()]
        smooth = not copied and self.predictor is not None and self.predictor.smooth_prior
        missing = missing_grain(current, hole, usable) if smooth else None
        grainy = missing is not None and float(missing.max()) > 0
        # The final nearest-neighbour field costs a VGG pass and a search: only for detail transfer or grain, and
        # a hole copied by pixel patches alone has its pixel field already.
        if want_match and self.pixel_only and self.pixel_sources is not None:
            match, stride = pixel_field_match(current, hole, self.pixel_sources), 1
        else:
            match = self._final_match(current * 255, hole, excluded) if want_match or grainy else None
        if grainy:
            current = add_grain(current, hole, usable, match, stride, missing)
        return CropResult(current.clamp(0, 1), match if want_match else None, stride)

    def _complete(self, image: torch.Tensor, hole: torch.Tensor, excluded: torch.Tensor, want_match: bool,
                  predict_size: tuple[int, int]) -> CropResult:
        """A hole wider than a stroke, filled by patch completion (engine/completion.py) from the content
        prediction; the fill is copies of known pixels already, so nothing raises its detail or adds grain."""
        usable = (1 - hole) * (1 - excluded)
        completion = Completion(image, hole, usable)
        self.progress.plan(completion.plan())
        prediction = self._predict(image, hole, predict_size)
        start = None if prediction is None else self._put_in(image, 1 - hole, resize(prediction, image.shape[-2:]))
        self.check_cancel()
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        current, sources = completion.run(start, seed, self.check_cancel, self.progress.iteration)
        current = image * (1 - hole) + current * hole
        match = pixel_field_match(current, hole, sources) if want_match else None
        return CropResult(current.clamp(0, 1), match, 1, refine_native=False)

    def _copy(self, current: torch.Tensor, reference: torch.Tensor | None, hole: torch.Tensor, usable: torch.Tensor,
              index: int, iterations: int, rounds: int) -> tuple[torch.Tensor, Field | None]:
        """One scale's copying of real pixels (engine/neural_em.py, then engine/pixel_match.py), after its
        `iterations` of L-BFGS; without a content prediction the start guides the copies."""
        opts = self.options
        guide = current if reference is None else reference
        if self.pixel_only:
            current = self._copy_pixels(current, guide, hole, usable, opts.pixel_iterations or rounds)
            self.progress.iteration(index, iterations + rounds, iterations + rounds)
            return current, None
        em = NeuralEM(self._texture_features, guide, hole, usable, opts.augment, opts.candidate_stride,
                      self.check_cancel)

        def done(count: int) -> None:
            self.progress.iteration(index, iterations + count, iterations + rounds)

        current, field = em.run(current, rounds, done)
        self.check_cancel()
        if opts.pixel_iterations and field is not None:
            current = self._copy_pixels(current, guide, hole, usable, opts.pixel_iterations, field)
        return current, field

    def _copy_pixels(self, current: torch.Tensor, guide: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor,
                     rounds: int, field: Field | None = None) -> torch.Tensor:
        """One scale's pixel PatchMatch: started from the neural `field` (the coarser scale's field doubled tried
        beside it), or without one, as a narrow hole's only copying, from the coarser field doubled (PatchMatch's
        inpainting, coarse to fine) or each pixel's own place at the first scale."""
        pixels = PixelMatch(current, hole, usable, guide, self.generator, self.check_cancel)
        inherited = None if self.pixel_sources is None else pixels.inherited(self.pixel_sources)
        if field is not None:
            current = pixels.run(current, pixels.start(field), rounds, inherited)
        else:
            current = pixels.run(current, pixels.own_places() if inherited is None else inherited, rounds)
        self.pixel_sources = pixels.sources
        return current

    def copy_from_beside(self, current: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
        """A last pixel-precise PatchMatch at the crop's size, searched afresh from each pixel's own place outward
        and guided by the fill itself: the copies come from right beside the hole, as PatchMatch's inpainting
        takes them, where the scales' fields reached through neural matches for farther ones. Thin holes gain
        most; deeper than BESIDE px into a wide hole nothing is near enough, and the fill stays as it was."""
        if not self.options.beside_iterations:
            return current
        self.check_cancel()
        near = hole * (depth(hole) <= BESIDE)
        pixels = PixelMatch(current, near, usable, current, self.generator, self.check_cancel)
        current = pixels.run(current, pixels.own_places(), self.options.beside_iterations)
        return match_detail(current, hole, usable, self.options.detail_gain)  # its vote softens the fill

    def _texture_features(self, x255: torch.Tensor) -> torch.Tensor:
        return self._features(x255, (EM_LAYER,))[EM_LAYER]

    def _predict(self, image: torch.Tensor, hole: torch.Tensor, size: tuple[int, int]) -> torch.Tensor | None:
        """The content prediction at the first scale (see scale_plan)."""
        if self.predictor is None:
            return None
        # A smooth prior gets every cell the hole touches, not grown as hole_at grows it: the network takes no
        # colour from the hole, and each pixel of context it loses at 128 px is four lost at 512 (measured:
        # docs/quality.md). The patch predictor copies from cells next to it: it keeps the margin.
        level_hole = touched(hole, size) if self.predictor.smooth_prior else hole_at(hole, size)
        return self.predictor.predict(resize(image, size, "area"), level_hole)

    def _put_in(self, image: torch.Tensor, known: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        """`fill` in this level's hole: made seamless for a smooth prior, as it is otherwise."""
        if self.predictor is not None and self.predictor.smooth_prior:
            return seamless(image, known, fill)
        return image * known + fill * (1 - known)

    def _features(self, x255: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        if x255.device.type == "cpu":
            x255 = x255.contiguous(memory_format=torch.channels_last)
        with reduced_precision(x255.device, self.precision):
            features = self.vgg(x255, names)
        return {name: value.float() for name, value in features.items()}

    def _banks(self, x255: torch.Tensor, hole: torch.Tensor, excluded: torch.Tensor) -> dict[str, PatchBank]:
        with torch.no_grad():
            features = self._features(x255, self.layers)
        never = (hole > 0) | excluded
        return {name: PatchBank(features[name], cells_touching(never, LAYER_STRIDE[name]),
                                self.options.candidate_stride) for name in self.layers}

    def _optimise_scale(self, x255: torch.Tensor, hole: torch.Tensor, excluded: torch.Tensor,
                        reference255: torch.Tensor | None, index: int, iterations: int) -> torch.Tensor:
        if iterations == 0:
            return x255
        opts = self.options
        banks = self._banks(x255, hole, excluded)
        top, bottom, left, right = hole_window(hole, WINDOW_MARGIN)
        window = (..., slice(top, bottom), slice(left, right))
        win_hole = hole[window]
        fixed = (x255[window] * (1 - win_hole)).detach()
        # Only the hole's pixels are variables: L-BFGS's vector work then scales with the hole, not the window.
        inside = win_hole[0, 0].flatten().nonzero()[:, 0]
        hole_cells = {n: cells_touching(win_hole, LAYER_STRIDE[n]) for n in self.layers}
        content_target = None
        if reference255 is not None:
            with torch.no_grad():
                content_target = self._features(reference255[window], (CONTENT_LAYER,))[CONTENT_LAYER]
            # Normalised by the whole scale's feature count, as the reference's MSE over the full image.
            content_norm = content_target.shape[1] * (x255.shape[-2] // 8) * (x255.shape[-1] // 8)
        variable = x255[window].flatten(2)[..., inside].clone().requires_grad_(True)

        def compose() -> torch.Tensor:
            image = fixed.flatten(2).clone()
            image[..., inside] = variable
            return image.view_as(fixed)

        evaluations = 0
        threads = torch.get_num_threads()

        def closure() -> torch.Tensor:
            with torch_threads(threads):  # the network passes take every thread; L-BFGS's own steps take one
                return evaluate()

        def evaluate() -> torch.Tensor:
            nonlocal evaluations
            self.check_cancel()
            optimizer.zero_grad()
            x = compose()
            features = self._features(x, self.names)
            loss = torch.zeros((), device=x255.device)
            for name in self.layers:
                match = matches[name]
                loss = loss + opts.texture_weight * total((features[name] - match.target) ** 2 * match.covered)
            if content_target is not None:
                diff = features[CONTENT_LAYER] - content_target
                loss = loss + opts.content_weight * total(diff ** 2) / content_norm
            tv = total((x[..., 1:, :] - x[..., :-1, :]) ** 2) + total((x[..., :, 1:] - x[..., :, :-1]) ** 2)
            loss = loss + opts.tv_weight * tv
            loss.backward()
            evaluations += 1
            self.progress.iteration(index, min(evaluations, iterations), iterations)
            return loss

        # One optimiser for the whole scale: its curvature history carries over when the matches are renewed.
        optimizer = torch.optim.LBFGS([variable], lr=1, max_iter=1, history_size=25,
                                      tolerance_grad=0, tolerance_change=0)
        for chunk in _chunks(iterations, opts.nn_every):
            with torch.no_grad():
                features = self._features(compose(), self.layers)
            matches = {n: banks[n].match(features[n], hole_cells[n], self.check_cancel) for n in self.layers}
            optimizer.param_groups[0].update(max_iter=chunk, max_eval=chunk)
            with one_thread():  # its dot products round differently on different thread counts
                optimizer.step(closure)
        with torch.no_grad():
            variable.clamp_(0, 255)
        result = x255.clone()
        result[window] = compose().detach()
        self.progress.iteration(index, iterations, iterations)
        return result

    def _detail_layer(self) -> str:
        return min(self.layers, key=lambda n: LAYER_STRIDE[n])

    def _final_match(self, x255: torch.Tensor, hole: torch.Tensor, excluded: torch.Tensor) -> Match:
        """Which known patch each hole cell of the result looks like: guides the native-resolution detail."""
        name = self._detail_layer()
        stride = LAYER_STRIDE[name]
        with torch.no_grad():
            features = self._features(x255, (name,))[name]
        never = (hole > 0) | (excluded > 0)
        bank = PatchBank(features, cells_touching(never, stride), 1)
        return bank.match(features, cells_touching(hole, stride), self.check_cancel)


def depth(hole: torch.Tensor) -> torch.Tensor:
    """(1,1,H,W): each hole pixel's distance in px to the nearest known pixel (0 outside the hole)."""
    inside = hole[0, 0].cpu().numpy() > 0
    return torch.from_numpy(distance_transform_edt(inside)).to(hole)[None, None]


def first_side(predictor: ContentPredictor | None) -> int:
    """The crop side the pyramid starts at: the content predictor's own, or the coarsest without one."""
    return 0 if predictor is None else predictor.preferred_side


def _chunks(total: int, every: int) -> list[int]:
    """Iterations between nearest-neighbour searches: `every` at a time, or all at once when every is 0."""
    if every <= 0 or every >= total:
        return [total]
    return [every] * (total // every) + ([total % every] if total % every else [])
