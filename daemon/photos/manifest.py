"""The photos folder's manifest.json (what each file is, its licence and checksum), and the split by photo."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

MANIFEST = "manifest.json"
FORMAT = 1
VALIDATION_FRACTION = 0.15


E = TypeVar("E")


class PhotosError(Exception):
    """A run that cannot go on (an unknown source, an --out that is not a photos folder); one line."""


@dataclass(frozen=True)
class Entry:
    file: str  # relative to the folder, with /
    source: str  # package==version
    original: str  # path inside the package
    sha256: str
    width: int
    height: int
    licence: str
    credit: str = ""  # who to credit, as the package states it (a debian/copyright line, an author's name)
    group: str = ""  # photo identity for splits: photos of one scene share it

    @property
    def photo(self) -> str:
        """What split_by_photo keeps on one side."""
        return f"{self.source.split('==')[0]}/{self.group or self.file}"


@dataclass(frozen=True)
class Missing:
    source: str
    package: str
    command: str
    error: str


@dataclass
class Manifest:
    folder: Path
    photos: list[Entry]
    missing: list[Missing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, dict] = field(default_factory=dict)  # name -> package, licence file, counts
    requested: list[str] = field(default_factory=list)
    selection: str = ""
    up_to_date: bool = False  # assemble found the folder complete and did nothing

    def to_json(self) -> dict:
        return {"format": FORMAT, "selection": self.selection, "requested": self.requested,
                "sources": self.sources, "missing": [asdict(item) for item in self.missing], "notes": self.notes,
                "photos": [asdict(entry) for entry in self.photos]}


def read_manifest(folder: Path) -> Manifest:
    """The whole manifest; raises PhotosError when there is none or it cannot be read."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PhotosError(f"{path}: no manifest") from None
    except (OSError, ValueError) as exc:
        raise PhotosError(f"{path}: unreadable manifest ({exc})") from None
    if isinstance(data, list):  # a bare list of entries is accepted too
        data = {"photos": data}
    known = {name for name in Entry.__dataclass_fields__}
    try:
        photos = [Entry(**{key: value for key, value in item.items() if key in known}) for item in data["photos"]]
        missing = [Missing(**item) for item in data.get("missing", [])]
    except (KeyError, TypeError) as exc:
        raise PhotosError(f"{path}: not a photos manifest ({exc})") from None
    return Manifest(Path(folder), photos, missing, list(data.get("notes", [])), dict(data.get("sources", {})),
                    list(data.get("requested", [])), str(data.get("selection", "")))


def load_manifest(folder: Path) -> list[Entry]:
    return read_manifest(folder).photos


def verify(folder: Path) -> list[str]:
    """Problems with a photos folder: no manifest, missing files, checksum mismatches. [] when all is well."""
    folder = Path(folder)
    try:
        entries = load_manifest(folder)
    except PhotosError as exc:
        return [str(exc)]
    problems = []
    for entry in entries:
        path = folder / entry.file
        if not path.is_file():
            problems.append(f"{entry.file}: missing")
        elif sha256_of(path) != entry.sha256:
            problems.append(f"{entry.file}: checksum mismatch (changed or corrupted)")
    return problems


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_by_photo(entries: list[E], validation_fraction: float = VALIDATION_FRACTION,
                   seed: int = 0) -> tuple[list[E], list[E]]:
    """(training, validation), by photo: the files of one photo group are never on both sides. The one split of
    the project: training and evaluation both take their photos from it. Entries are the manifest's, or anything
    with a `file`, a `source` and a `photo` group.

    Stratified by source: a source with at least 3 photos (and 2 groups) gives about validation_fraction of its
    photos, at least one, to validation; a smaller one goes to training whole. Deterministic for a seed, whatever
    the order of the entries."""
    if not 0 <= validation_fraction < 1:
        raise ValueError("validation_fraction must be in [0, 1)")
    by_source: dict[str, dict[str, list[Entry]]] = {}
    for entry in entries:
        by_source.setdefault(entry.source.split("==")[0], {}).setdefault(entry.photo, []).append(entry)
    validation_photos: set[str] = set()
    for source, groups in sorted(by_source.items()):
        count = sum(len(members) for members in groups.values())
        if count < 3 or len(groups) < 2 or validation_fraction == 0:
            continue
        target = max(1, round(validation_fraction * count))
        order = sorted(groups)
        random.Random(f"{seed}:{source}").shuffle(order)
        chosen, taken = [], 0
        for key in order:
            if taken + len(groups[key]) <= target:
                chosen.append(key)
                taken += len(groups[key])
            if taken == target:
                break
        if not chosen:  # every group is bigger than the target: the smallest one, never them all
            chosen = [min(order, key=lambda key: len(groups[key]))]
        validation_photos.update(chosen)
    ordered = sorted(entries, key=lambda entry: entry.file)
    return ([entry for entry in ordered if entry.photo not in validation_photos],
            [entry for entry in ordered if entry.photo in validation_photos])
