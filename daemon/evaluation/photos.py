"""Which photos `neural-fill eval` scores on, and reading them.

A folder made by `neural-fill photos` is scored on the validation side of its manifest's split, the same split
`neural-fill train` trains on the other side of, so the content network is never scored on a photo it learnt from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from daemon.files import IMAGE_SUFFIXES
from daemon.photos.manifest import MANIFEST, PhotosError, load_manifest, split_by_photo

VALIDATION_SPLITS = {"val", "valid", "validation", "test", "eval", "evaluation", "held-out", "holdout"}


def list_photos(folder: Path, exclude: Path | None = None) -> tuple[list[Path], str]:
    """The photos to evaluate on and a sentence saying where they come from.

    With a `manifest.json` written by `neural-fill photos` (an object with "photos": [entry...]), the validation
    photos of `split_by_photo`, as daemon/training/'s `training_split` splits it. With any other manifest (a list of
    entries with a "file" relative to the folder), only the entries marked as the validation split
    ("split"/"subset"/"set" = val, validation, test..., or "validation": true), or all entries when none is
    marked. Files a manifest lists that are missing are left out. Without a manifest, or with one that cannot be
    understood, every PNG, JPEG and TIFF under the folder (hidden folders and `exclude` left out), sorted by path.
    """
    manifest = folder / MANIFEST
    if manifest.is_file():
        data = _read_json(manifest)
        split = _validation_split(folder) if _written_by_photos(data) else None
        if split is not None:
            return split
        entries = _manifest_entries(data)
        if entries is not None:
            marked = [name for name, validation in entries if validation]
            chosen = marked or [name for name, _ in entries]
            photos = [folder / name for name in chosen if (folder / name).is_file()]
            which = "the validation split" if marked else "all entries (no split marked)"
            return photos, f"manifest.json: {which}, {len(photos)} photos" + _missing(len(chosen) - len(photos))
    excluded = exclude.resolve() if exclude is not None else None
    photos = []
    for path in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix()):
        relative = path.relative_to(folder)
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        if excluded is not None and excluded in path.resolve().parents:
            continue
        photos.append(path)
    return photos, f"every PNG, JPEG and TIFF file under the folder: {len(photos)} photos"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _written_by_photos(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("photos"), list)


def _validation_split(folder: Path) -> tuple[list[Path], str] | None:
    """The validation side of the manifest's split by photo, or None when its entries are not `neural-fill photos`
    entries (then the manifest is read as any other)."""
    try:
        training, validation = split_by_photo(load_manifest(folder))
    except PhotosError:
        return None
    photos = [folder / entry.file for entry in validation if (folder / entry.file).is_file()]
    return photos, (f"validation split of the manifest: {len(photos)} photos" + _missing(len(validation) - len(photos))
                    + f" (split by photo as `neural-fill train` splits it; its {len(training)} training photos "
                    "are left out)")


def _missing(count: int) -> str:
    return f" ({count} listed but missing)" if count else ""


def _manifest_entries(data: Any) -> list[tuple[str, bool]] | None:
    """(file, is validation) per entry, or None when the manifest cannot be understood (then the folder is read)."""
    if isinstance(data, dict):
        data = next((data[key] for key in ("photos", "entries", "files", "images", "items")
                     if isinstance(data.get(key), list)), None)
    if not isinstance(data, list):
        return None
    entries = []
    for entry in data:
        if isinstance(entry, str):
            entries.append((entry, False))
        elif isinstance(entry, dict) and isinstance(entry.get("file"), str):
            split = next((entry[key] for key in ("split", "subset", "set") if isinstance(entry.get(key), str)), "")
            validation = split.strip().lower() in VALIDATION_SPLITS or entry.get("validation") is True
            entries.append((entry["file"], validation))
    return entries or None


def read_photo(path: Path) -> np.ndarray:
    """uint8 HxWx3 RGB: grey is repeated, alpha dropped, 16 bits reduced to 8."""
    from daemon.files import read_image, to_8_bit

    pixels = read_image(path)
    if pixels.dtype != np.uint8:
        pixels = to_8_bit(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] in (2, 4):  # alpha last
        pixels = pixels[..., :-1]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)
