"""What a batch is made of, whoever fills it: the pairing rule, each file's outcome, the report, and the one way a
file is filled (read, fill, write atomically).

Pairing rule: an image `NAME.EXT` takes the mask `NAME.<png|jpg|jpeg|tif|tiff>` or `NAME_mask.<...>` from the masks
folder (the exact stem first). An image without a mask is that file's failure, never a reason to stop. Outputs are
named like the input; an output that already exists is skipped (unless forced), so a re-run resumes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from daemon.files import IMAGE_SUFFIXES, ImageFileError, read_image, write_image
from daemon.masks import read_mask
from engine.errors import FillError

MASK_SUFFIX = "_mask"
FORMAT_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif"}
IN_PROCESS = "this process"  # the name of the in-process filler in the report


@dataclass
class Pair:
    image: Path
    mask: Path | None
    output: Path


@dataclass
class Outcome:
    pair: Pair
    status: str  # "done", "skipped", "failed", or "cancelled" (in flight when the batch was interrupted)
    reason: str = ""
    daemon: str | None = None  # who filled it: a daemon's endpoint, this process or a Ray worker


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    by_daemon: dict[str, int] = field(default_factory=dict)  # files filled by each filler (as Outcome.daemon)
    dropped: dict[str, str] = field(default_factory=dict)  # filler -> why it was dropped
    not_started: list[Pair] = field(default_factory=list)  # left when the batch was interrupted
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    def summary(self) -> str:
        lines = [f"done {self.count('done')}, skipped {self.count('skipped')} (already there), "
                 f"failed {self.count('failed')}"]
        if self.interrupted:
            lines[0] += f", cancelled {self.count('cancelled')} (in flight), not started {len(self.not_started)}"
        lines += [f"  {shown_name(name)}: {count} filled" for name, count in self.by_daemon.items()]
        lines += [f"  {shown_name(name)} dropped: {why}" for name, why in self.dropped.items()]
        lines += [f"  failed {outcome.pair.image.name}: {outcome.reason}" for outcome in self.failed]
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The summary for scripts: counts, each failed file with why, what each filler did."""
        return {"done": self.count("done"), "skipped": self.count("skipped"), "failed": len(self.failed),
                "cancelled": self.count("cancelled"), "not_started": [str(p.image) for p in self.not_started],
                "interrupted": self.interrupted, "filled_by": dict(self.by_daemon), "dropped": dict(self.dropped),
                "failures": [{"image": str(o.pair.image), "reason": o.reason} for o in self.failed]}


def shown_name(name: str) -> str:
    """A filler as the summary names it: `daemon ENDPOINT`, `this process`, `ray worker 2 (10.0.0.5)`."""
    return f"daemon {name}" if "://" in name else name


# ------------------------------------------------------------------------------------------------ pairing


def find_mask(image: Path, masks: Path) -> Path | None:
    # In the images' own folder, `photo.png` would be the image itself: only `photo_mask.*` counts there.
    same_folder = masks.resolve() == image.parent.resolve()
    stems = (image.stem + MASK_SUFFIX,) if same_folder else (image.stem, image.stem + MASK_SUFFIX)
    for stem in stems:
        for suffix in IMAGE_SUFFIXES:
            for candidate in (masks / (stem + suffix), masks / (stem + suffix.upper())):
                if candidate.is_file():
                    return candidate
    return None


def pair_files(images: Path, masks: Path, out: Path, output_format: str | None = None) -> list[Pair]:
    """Every image in `images` (sorted by name) with its mask and output path. Files named `*_mask.*` are masks,
    not images, so both may share one folder."""
    pairs = []
    for image in sorted(images.iterdir()):
        if (not image.is_file() or image.name.startswith(".") or image.suffix.lower() not in IMAGE_SUFFIXES
                or image.stem.endswith(MASK_SUFFIX)):
            continue
        suffix = FORMAT_SUFFIXES[output_format] if output_format else image.suffix
        pairs.append(Pair(image, find_mask(image, masks), out / (image.stem + suffix)))
    return pairs


class BatchInterrupted(Exception):  # noqa: N818 - an outcome, carried with its report
    """The batch was stopped (its cause: KeyboardInterrupt, or the CLI's SIGTERM exception); the outputs written so
    far are kept."""

    def __init__(self, report: Report) -> None:
        super().__init__("the batch was interrupted")
        self.report = report


OnOutcome = Callable[[Outcome], None]


class Recorder:
    """Each file's outcome into the report, the progress bar and the caller's `on_outcome`, from any thread."""

    def __init__(self, report: Report, total: int, quiet: bool, on_outcome: OnOutcome | None) -> None:
        self.report, self._on_outcome, self._lock = report, on_outcome, threading.Lock()
        self.bar = tqdm(total=total, desc="batch", unit="file", disable=True if quiet else None, dynamic_ncols=True)

    def __call__(self, outcome: Outcome) -> None:
        with self._lock:
            self.report.outcomes.append(outcome)
            if outcome.status == "done" and outcome.daemon is not None:
                self.report.by_daemon[outcome.daemon] += 1
            self.bar.update(1)
        if self._on_outcome is not None:
            self._on_outcome(outcome)


def sort_out(pairs: list[Pair], masks: Path, force: bool, record: OnOutcome) -> list[Pair]:
    """The pairs to fill; the others are recorded now: skipped (output there), or failed (no mask, or an output
    name another image already has)."""
    todo, seen = [], set()
    for pair in pairs:
        if pair.output in seen:
            record(Outcome(pair, "failed", f"another image has the same output name {pair.output.name}"))
        elif pair.output.exists() and not force:
            record(Outcome(pair, "skipped"))
        elif pair.mask is None:
            record(Outcome(pair, "failed", f"no mask for it in {masks} (looked for {pair.image.stem}.png, "
                                           f"{pair.image.stem}{MASK_SUFFIX}.png, .jpg, .tif...)"))
        else:
            todo.append(pair)
        seen.add(pair.output)
    return todo


def failure_reason(error: Exception) -> str:
    """What a file's failure says: an error about the input in its own words, any other with its type."""
    return str(error) if isinstance(error, (ImageFileError, FillError)) else f"{type(error).__name__}: {error}"


def fill_file(pair: Pair, fill: Callable[[np.ndarray, np.ndarray], np.ndarray], quality: int | None) -> None:
    """Read the pair's image and mask, fill, and write the output atomically (never half a file)."""
    image = read_image(pair.image)
    mask = read_mask(pair.mask, image)
    write_image(pair.output, fill(image, mask), like=pair.image, quality=quality, like_pixels=image)
