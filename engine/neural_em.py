"""Neural-patch EM: the hole's pixels are copied from real known patches, chosen by VGG-19 feature patches and
kept in agreement with the content prediction.

One scale of it, repeated `vote_iterations` times (Wexler et al.'s completion, with the neural patches of Yang et
al.'s texture term as the patch descriptor, as Deep Image Analogy rebuilds its output from real pixels):
1. match: every 3x3-cell relu3_1 patch of the current estimate that lies in the hole is compared with the known
   patches of the bank (the photo, and with `augment` its mirrored, rotated and scaled copies). The distance adds
   to the patches' cosine distance two guides that keep the copy faithful to the content prediction: the blurred
   colours of the candidate against the prediction's, and the candidate's detail level against the one the hole's
   border says the hole should have. A sky next to a lattice then copies sky.
2. regularise: among each cell's best few candidates and those that continue a neighbour's copy, pick by
   iterated conditional modes what continues neighbours (coherent copies are sharp) and does not repeat the very
   same patch next door (repeats make tiles).
3. vote: each matched cell receives the real pixels around its source, Hann-blended, and their gradients.
4. blend: the voted gradients are integrated in the gradient domain (engine/poisson.py), so seams between copies
   vanish, held near the content prediction by a weak screen, so the copied texture sits on the network's
   structure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from .content import harmonic_fill
from .device import one_thread
from .filters import forward_differences, gaussian_blur, normalised_blur
from .patches import PATCH, cells_touching, patch_footprint
from .poisson import screen_for, screened_poisson
from .voting import vote_windows

LAYER = "relu3_1"  # 4 px cells: fine enough to place texture, deep enough to know grass from gravel
CHANNELS = 32  # feature channels kept for matching (the strongest directions of the bank's own features)
GUIDE_SIGMA = 2.0  # cells: the blur under which a candidate's colours are compared with the prediction's
COLOUR_SCALE = 20 / 255  # a colour difference of this size costs as much as ...
ENERGY_WEIGHT = 0.3  # ... and a factor e in detail level this much, against a cosine distance in 0..4
TOP = 6  # candidates per cell kept from the exhaustive search for the regularisation
COHERENCE = 0.1  # distance a candidate may lose and still win by continuing one neighbour's copy
REPEAT = 0.1  # distance a candidate is charged per neighbour that copies the very same cell
ROUNDS = 2  # regularisation sweeps
POISSON_CROSSOVER = 64.0  # px: the weak screen that keeps the gradient solve near the content prediction
ROTATION = math.pi / 24  # the reference's patch bank: copies rotated by +-pi/24 ...
SCALE = 1.05  # ... and scaled by 1.05^+-1
QUERY_CHUNK_ELEMENTS = 1 << 24  # scores held at once in the exhaustive search

Features = Callable[[torch.Tensor], torch.Tensor]  # (B,3,H,W) 0..255 -> (B,C,h,w) relu3_1


def transforms(augment: bool) -> list[tuple[float, float, bool]]:
    """(angle, scale, mirrored) of each copy in the bank, the photo itself first."""
    if not augment:
        return [(0.0, 1.0, False)]
    shapes = [(0.0, 1.0), (ROTATION, 1.0), (-ROTATION, 1.0), (0.0, SCALE), (0.0, 1 / SCALE)]
    return [(angle, scale, mirrored) for mirrored in (False, True) for angle, scale in shapes]


def warp(image: torch.Tensor, angle: float, scale: float, mirrored: bool) -> torch.Tensor:
    """(1,C,H,W) rotated by `angle` and scaled by `scale` about its centre, mirrored left to right; what falls
    outside is zero."""
    if angle == 0 and scale == 1 and not mirrored:
        return image
    height, width = image.shape[-2:]
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    flip = -1.0 if mirrored else 1.0
    # Sampling grid in normalised coordinates, corrected for the aspect ratio so that rotations stay rigid.
    aspect = height / width
    theta = torch.tensor([[flip * cos, -sin * aspect, 0.0], [flip * sin / aspect, cos, 0.0]],
                         dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta[None], list(image.shape), align_corners=False)
    with one_thread():  # grid_sample rounds differently on different thread counts
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def copies_of(image: torch.Tensor, usable: torch.Tensor, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (B,3,H,W), usable (B,1,H,W)): the photo and, with `augment`, its transformed copies."""
    copies = [(warp(image, *t), (warp(usable, *t) > 0.999).to(image.dtype)) for t in transforms(augment)]
    return torch.cat([c[0] for c in copies]), torch.cat([c[1] for c in copies])


def detail_level(image: torch.Tensor, usable: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(log detail per cell (B,1,h,w), cells wholly usable (B,1,h,w)): the local mean gradient magnitude of the
    luma (0..255 units), Gaussian-averaged over 2 cells."""
    grey = image.mean(1, keepdim=True) * 255
    dx, dy = forward_differences(grey)
    valid = usable * F.pad(usable[..., :, 1:], (0, 1)) * F.pad(usable[..., 1:, :], (0, 0, 0, 1))
    local = normalised_blur((dx ** 2 + dy ** 2).sqrt(), valid, GUIDE_SIGMA * stride)
    share = F.avg_pool2d(valid, stride, stride, ceil_mode=True)
    cells = F.avg_pool2d(local * valid, stride, stride, ceil_mode=True) / share.clamp_min(1e-6)
    return torch.log1p(cells), (share > 0.999).to(image.dtype)


def cell_patches(x: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, C*9, h*w): the 3x3-cell patches of x (B,C,H,W) averaged to cells of `stride` px."""
    return F.unfold(F.avg_pool2d(x, stride, stride, ceil_mode=True), PATCH, padding=PATCH // 2)


@dataclass
class Bank:
    """The candidate patches of one scale: never touching the hole, the padding or a copy's empty corners."""

    images: torch.Tensor  # (B,3,H,W) 0..1: the photo and its transformed copies
    usable: torch.Tensor  # (B,1,H,W): pixels that may be copied
    cells: torch.Tensor  # (n,3) long: (copy, row, col) of each candidate's centre cell
    features: torch.Tensor  # (D,n) unit vectors: the projected relu3_1 patches
    guides: torch.Tensor  # (G,n): the colour and detail guides, already weighted
    basis: torch.Tensor  # (C,CHANNELS): the projection of the relu3_1 channels
    grid: tuple[int, int]  # (h, w) cells per copy
    index: torch.Tensor  # (B*h*w,) long: candidate number of each cell, -1 where none
    projected: torch.Tensor  # (1,CHANNELS,h,w): the photo's own projected features, for the queries

    @classmethod
    def build(cls, features_of: Features, image: torch.Tensor, usable: torch.Tensor, augment: bool,
              candidate_stride: int) -> Bank:
        stride = 4
        images, usables = copies_of(image, usable, augment)
        with torch.no_grad():
            feats = features_of(images * 255)
        count, channels, height, width = feats.shape
        flat = feats.permute(1, 0, 2, 3).reshape(channels, -1)
        with one_thread():  # LAPACK splits eigh differently on different thread counts
            _, vectors = torch.linalg.eigh(flat @ flat.T / flat.shape[1])
        basis = vectors[:, -min(CHANNELS, channels):]
        projected = (basis.T @ flat).view(-1, count, height, width).permute(1, 0, 2, 3)
        patches = F.unfold(projected, PATCH, padding=PATCH // 2)  # (B, D, h*w)
        allowed = ~torch.stack([patch_footprint(cells_touching(1 - u[None], stride)) for u in usables])
        allowed[:, 0, :] = allowed[:, -1, :] = False
        allowed[:, :, 0] = allowed[:, :, -1] = False
        grid = torch.zeros_like(allowed)
        grid[:, ::candidate_stride, ::candidate_stride] = True
        cells = (allowed & grid).nonzero()
        if candidate_stride > 1 and cells.shape[0] < 256:
            cells = allowed.nonzero()
        flat_index = cells[:, 1] * width + cells[:, 2]
        chosen = patches[cells[:, 0], :, flat_index].T  # (D, n)
        colour = cell_patches(normalised_blur(images, usables, GUIDE_SIGMA * stride), stride)
        energy, _ = detail_level(images, usables, stride)
        energy = F.unfold(energy, PATCH, padding=PATCH // 2).mean(1, keepdim=True)
        guides = torch.cat([colour[cells[:, 0], :, flat_index].T * guide_colour_factor(),
                            energy[cells[:, 0], :, flat_index].T * math.sqrt(ENERGY_WEIGHT)])
        index = torch.full((count * height * width,), -1, dtype=torch.long, device=image.device)
        index[cells[:, 0] * height * width + flat_index] = torch.arange(cells.shape[0], device=image.device)
        return cls(images, usables, cells, unit(chosen), guides, basis, (height, width), index, projected[:1])

    def __len__(self) -> int:
        return self.cells.shape[0]


def guide_colour_factor() -> float:
    # A mean over the 27 colour values of a 3x3-cell patch, in units of COLOUR_SCALE.
    return 1 / (COLOUR_SCALE * math.sqrt(3 * PATCH * PATCH))


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=0, keepdim=True).clamp_min(1e-8)


@dataclass
class Field:
    """Matches of one scale: query cells in the crop's grid and their source cells (copy, row, col) in the bank."""

    query: torch.Tensor  # (n,2)
    source: torch.Tensor  # (n,3)
    stride: int


class NeuralEM:
    """The EM rounds of one scale; `run` returns the new estimate and its field."""

    def __init__(self, features_of: Features, reference: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor,
                 augment: bool, candidate_stride: int, check_cancel: Callable[[], None]) -> None:
        """reference (1,3,H,W) 0..1: the content prediction at this scale, seamless; hole (1,1,H,W) {0,1};
        usable (1,1,H,W): the known pixels that may be copied."""
        self.features_of = features_of
        self.reference = reference
        self.hole = hole
        self.usable = usable
        self.augment = augment
        self.candidate_stride = candidate_stride
        self.check_cancel = check_cancel
        self.stride = 4
        self.bank = self.bank_of(reference)
        check_cancel()  # the bank costs a VGG pass of the whole scale
        height, width = self.bank.grid
        hole_cells = cells_touching(hole, self.stride)
        self.queries = hole_cells.nonzero()
        flat = self.queries[:, 0] * width + self.queries[:, 1]
        # The guides of the queries: the prediction's blurred colours, and the detail level the border has,
        # carried into the hole by a harmonic fill.
        colour = cell_patches(gaussian_blur(reference, GUIDE_SIGMA * self.stride), self.stride)[0][:, flat]
        energy, whole = detail_level(reference, usable, self.stride)
        energy = harmonic_fill(energy * whole, whole)
        energy = F.unfold(energy, PATCH, padding=PATCH // 2)[0].mean(0, keepdim=True)[:, flat]
        self.guides = torch.cat([colour * guide_colour_factor(), energy * math.sqrt(ENERGY_WEIGHT)])

    def run(self, current: torch.Tensor, iterations: int, done: Callable[[int], None] = lambda rounds: None
            ) -> tuple[torch.Tensor, Field | None]:
        """`iterations` rounds of match and vote from `current` (1,3,H,W) 0..1; `done` hears each round end."""
        field = None
        for number in range(iterations):
            self.check_cancel()
            # The bank is made anew from the current estimate: candidates next to the hole see it through their
            # receptive field, and a bank made from a soft start would favour soft patches.
            self.bank = self.bank_of(current)
            if len(self.bank) == 0:  # a scale too small for a whole known patch beside a hole this wide
                break
            field = self.match(current)
            current = self.vote(current, field)
            done(number + 1)
        return current, field

    def bank_of(self, image: torch.Tensor) -> Bank:
        return Bank.build(self.features_of, image, self.usable, self.augment, self.candidate_stride)

    # ------------------------------------------------------------------------------------------ match

    def match(self, current: torch.Tensor) -> Field:
        """The field of the current estimate, whose features the bank holds."""
        bank = self.bank
        height, width = bank.grid
        flat = self.queries[:, 0] * width + self.queries[:, 1]
        queries = unit(F.unfold(bank.projected, PATCH, padding=PATCH // 2)[0][:, flat])
        top = self._nearest(queries)
        chosen = self._regularise(queries, top)
        return Field(self.queries, bank.cells[chosen], self.stride)

    def _distance(self, queries: torch.Tensor, q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        bank = self.bank
        cosine = (queries[:, q] * bank.features[:, c]).sum(0)
        return 2 - 2 * cosine + ((self.guides[:, q] - bank.guides[:, c]) ** 2).sum(0)

    def _nearest(self, queries: torch.Tensor) -> torch.Tensor:
        """(q, TOP): the candidates nearest each query, exhaustively (two matrix products per chunk)."""
        bank = self.bank
        count = len(bank)
        keep = min(TOP, count)
        guide_norms = (bank.guides ** 2).sum(0)
        chunk = max(1, QUERY_CHUNK_ELEMENTS // max(1, count))
        top = torch.empty(queries.shape[1], keep, dtype=torch.long, device=queries.device)
        for start in range(0, queries.shape[1], chunk):
            self.check_cancel()
            part = slice(start, start + chunk)
            # distance - constants = -2 cos + |g_c|^2 - 2 g_q.g_c
            scores = -2 * (queries[:, part].T @ bank.features) + guide_norms[None, :] \
                - 2 * (self.guides[:, part].T @ bank.guides)
            top[part] = scores.topk(keep, dim=1, largest=False).indices
        return top

    def _regularise(self, queries: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        bank = self.bank
        height, width = bank.grid
        cells = bank.cells
        count = self.queries.shape[0]
        device = queries.device
        lookup = torch.full((height * width,), -1, dtype=torch.long, device=device)
        lookup[self.queries[:, 0] * width + self.queries[:, 1]] = torch.arange(count, device=device)
        steps = torch.tensor(STEPS, device=device)
        rows, cols = self.queries[:, 0, None] + steps[:, 0], self.queries[:, 1, None] + steps[:, 1]
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        neighbour = torch.where(inside, lookup[rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1)], -1)
        has = neighbour >= 0  # (q, 8)
        current = top[:, 0].clone()
        parity = (self.queries[:, 0] + self.queries[:, 1]) % 2
        for _ in range(ROUNDS):
            for half in (0, 1):
                source = cells[current]  # (q,3)
                around = source[neighbour.clamp_min(0)]  # (q,8,3)
                # The candidate that would continue each neighbour's copy: its source, one step back.
                row, col = around[..., 1] - steps[:, 0], around[..., 2] - steps[:, 1]
                fits = has & (row >= 0) & (row < height) & (col >= 0) & (col < width)
                flat = around[..., 0] * height * width + row.clamp(0, height - 1) * width + col.clamp(0, width - 1)
                continuing = torch.where(fits, bank.index[flat], -1)
                proposals = torch.cat([top, continuing, current[:, None]], 1)
                valid = proposals >= 0
                proposals = proposals.clamp_min(0)
                q = torch.arange(count, device=device)[:, None].expand_as(proposals)
                distance = self._distance(queries, q.reshape(-1), proposals.reshape(-1)).view_as(proposals)
                proposed = cells[proposals]  # (q,P,3)
                shifted = proposed[:, :, None, :].clone()
                shifted = shifted.expand(-1, -1, len(STEPS), -1).clone()
                shifted[..., 1:] += steps
                coherent = ((around[:, None] == shifted).all(-1) & has[:, None]).sum(-1)
                repeated = ((around[:, None] == proposed[:, :, None]).all(-1) & has[:, None]).sum(-1)
                energy = distance - COHERENCE * coherent + REPEAT * repeated
                energy = torch.where(valid, energy, torch.full_like(energy, math.inf))
                choice = proposals.gather(1, energy.argmin(1, keepdim=True))[:, 0]
                current = torch.where(parity == half, choice, current)
        return current

    # ------------------------------------------------------------------------------------------ vote

    def vote(self, current: torch.Tensor, field: Field) -> torch.Tensor:
        """The hole rebuilt from the field's real pixels: colours and gradients voted, the gradients integrated
        with the content prediction's coarse shading (engine/poisson.py)."""
        return blend_copies(current, self.reference, self.hole, self.bank, field, field.stride)


STEPS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1))
START_CROSSOVER = 16.0  # px: how much of the upsampled estimate a sharp start keeps


def sharp_start(upsampled: torch.Tensor, hole: torch.Tensor, usable: torch.Tensor, augment: bool,
                coarser: Field) -> torch.Tensor:
    """A scale's start: not the coarser result upsampled (soft, so its patches would match the calmest
    candidates), but this scale's own pixels copied along the coarser field, its cells twice as wide here, kept
    near the upsampled estimate below START_CROSSOVER (PatchMatch's inpainting does the same)."""
    size = tuple(upsampled.shape[-2:])
    images, usables = copies_of(upsampled, usable, augment)
    voted, weight = vote_windows(images, usables, coarser.query, coarser.source, 2 * coarser.stride, size)
    has = (weight > 1e-3).to(upsampled.dtype) * hole
    start = upsampled * (1 - has) + voted * has
    dx, dy = forward_differences(start)
    return screened_poisson(start, hole, dx, dy, upsampled, screen_for(START_CROSSOVER)).clamp(0, 1)


def blend_copies(current: torch.Tensor, reference: torch.Tensor, hole: torch.Tensor, bank: Bank, field: Field,
                 cell: int) -> torch.Tensor:
    """Vote the bank's pixels along `field` (its cells `cell` px wide at this scale) and blend them in."""
    dx, dy = forward_differences(bank.images)
    usable = bank.usable
    both = usable * F.pad(usable[..., :, 1:], (0, 1)) * F.pad(usable[..., 1:, :], (0, 0, 0, 1))
    size = tuple(current.shape[-2:])
    colour, weight = vote_windows(bank.images, usable, field.query, field.source, cell, size)
    gradients, gradient_weight = vote_windows(torch.cat([dx, dy], 1), both, field.query, field.source, cell, size)
    has = (weight > 1e-3).to(current.dtype) * hole
    has_gradient = (gradient_weight > 1e-3).to(current.dtype) * hole
    ref_dx, ref_dy = forward_differences(reference)
    start = current * (1 - hole) + (colour * has + reference * (1 - has)) * hole
    want_dx = gradients[:, :3] * has_gradient + ref_dx * (1 - has_gradient)
    want_dy = gradients[:, 3:] * has_gradient + ref_dy * (1 - has_gradient)
    # The copies keep their own shading, held near the prediction only by the solve's weak screen: replacing
    # their low band by the prediction's left a ghosted mix where two regions meet in the hole (docs/quality.md).
    solved = screened_poisson(start, hole, want_dx, want_dy, reference, screen_for(POISSON_CROSSOVER))
    return (current * (1 - hole) + solved * hole).clamp(0, 1)
