"""The photos a run trains and validates on: the split, loading, and random crops with holes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention

from daemon.evaluation.photos import read_photo
from daemon.files import IMAGE_SUFFIXES
from daemon.photos.manifest import MANIFEST, load_manifest, split_by_photo
from engine.content_net import SIZE
from engine.hole_masks import random_hole

MAX_SIDE = 1024  # photos are kept in memory at most this big: crops are 128 px, context beyond this is not needed
VALIDATION_CROPS = 4  # fixed crops and holes per validation photo


class Listed(NamedTuple):
    """A photo of a plain folder, as split_by_photo sees a manifest's entry: each file a photo of its own, its
    top folder its source."""

    file: str
    source: str
    photo: str


def training_split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(training, validation) photo files, split by photo as `neural-fill eval` reads the split (photos of one
    scene stay on one side). A folder made by `neural-fill photos` is split by its manifest's photo groups; in
    any other folder each file is a photo of its own. A folder too small to give a source's share still
    validates on one photo it does not train on."""
    if (folder / MANIFEST).is_file():
        entries: list = load_manifest(folder)
    else:
        files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                       if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
        entries = [Listed(file, file.split("/")[0] if "/" in file else "", file) for file in files]
    training, validation = split_by_photo(entries)
    training_files, validation_files = [folder / e.file for e in training], [folder / e.file for e in validation]
    if not validation_files and len(training_files) > 1:
        validation_files = [training_files.pop()]
    return training_files, validation_files


def load_photo(path: Path) -> torch.Tensor:
    """(3,H,W) uint8, RGB, long side at most MAX_SIDE: read as `neural-fill eval` reads it."""
    from PIL import Image

    picture = Image.fromarray(read_photo(path))
    scale = MAX_SIDE / max(picture.size)
    if scale < 1:
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                                 Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(picture, dtype=np.uint8).copy()).permute(2, 0, 1)


def random_crop(photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(3,SIZE,SIZE) float 0..1 from a square crop of random side (log-uniform), flipped half the time."""
    height, width = photo.shape[-2:]
    short = min(height, width)
    low, high = math.log(min(SIZE, short)), math.log(short)
    side = int(round(math.exp(low + (high - low) * float(torch.rand((), generator=generator)))))
    top = int(torch.randint(height - side + 1, (1,), generator=generator))
    left = int(torch.randint(width - side + 1, (1,), generator=generator))
    crop = photo[:, top:top + side, left:left + side].float()[None] / 255
    crop = F.interpolate(crop, size=(SIZE, SIZE), mode="area")[0]
    if float(torch.rand((), generator=generator)) < 0.5:
        crop = crop.flip(-1)
    brightness = 0.9 + 0.2 * float(torch.rand((), generator=generator))
    return (crop * brightness).clamp(0, 1)


def batch_of(photos: list[torch.Tensor], size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    picks = torch.randint(len(photos), (size,), generator=generator).tolist()
    images = torch.stack([random_crop(photos[index], generator) for index in picks])
    holes = torch.stack([random_hole(SIZE, generator) for _ in picks])
    return images, holes


def validation_set(photos: list[torch.Tensor], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed + 1_000_003)  # fixed: the same crops at every validation
    images, holes = [], []
    for photo in photos:
        for crop_index in range(VALIDATION_CROPS):
            images.append(random_crop(photo, generator))
            holes.append(random_hole(SIZE, generator, kind=("square", "strokes", "blob", "square")[crop_index]))
    return torch.stack(images), torch.stack(holes)
