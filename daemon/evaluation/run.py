"""`neural-fill eval`: run fill methods on photos with masks and score them in the hole.

Takes a folder of photos (photos.py), cuts seeded crops with a hole (samples.py: the paper's Table 1 setting
`centre128`, a bigger `centre512`, free-form strokes, or object-shaped blobs), lets every method (methods.py) fill
the hole, scores each result against the original in the hole (metrics.py: L1, L2, PSNR, SSIM, and wall time per
image) and without it (realism.py), and writes results.md, results.json (report.py) and comparison grids (grids.py).

Loads no torch until a method is built, so `neural-fill` starts as fast with the command registered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .grids import write_grid
from .methods import Method, Unavailable, available_methods, make_method
from .metrics import hole_scores
from .pairs import FOLDER, PairSheets
from .perceptual import Distance, PerceptualUnavailable, perceptual_distance
from .photos import list_photos, read_photo
from .realism import realism
from .report import method_summaries, write_results
from .samples import Sample, centre_hole, make_samples
from .settings import MASK_SETTINGS, EvalSettings

Log = Callable[[str], None]


@dataclass
class Report:
    """What `evaluate` found: the table's rows, the skipped methods and the failures."""

    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    samples: int = 0


def evaluate(settings: EvalSettings, log: Log = print, invoked_as: list[str] | None = None) -> Report:
    """Run the methods on every sample, write results.md, results.json and the grids into settings.out.

    Raises ValueError for input that cannot be evaluated (no photos, unknown method, no method can run here)."""
    if settings.masks not in MASK_SETTINGS:
        raise ValueError(f"unknown mask setting {settings.masks!r}: choose from {', '.join(MASK_SETTINGS)}")
    setting = MASK_SETTINGS[settings.masks]
    say = (lambda text: None) if settings.quiet else log
    photos, photo_note = list_photos(settings.data, exclude=settings.out)
    if settings.limit is not None:
        photos = photos[:settings.limit]
    if not photos:
        raise ValueError(f"{settings.data}: no photos to evaluate on ({photo_note})")

    specs = settings.methods
    if settings.pairs is not None:
        if specs is None:
            raise ValueError("--pairs needs --methods, ours first (ours: the first method that is not the peer)")
        specs = specs if settings.pairs in specs else [*specs, settings.pairs]
    methods, skipped = resolve_methods(specs, settings.seed)
    methods, failed_warm_up = warm_up(methods)
    skipped.update(failed_warm_up)
    for name, reason in skipped.items():
        say(f"skipped {name}: {reason}")
    if not methods:
        raise ValueError("no method can run here: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    pairs = pair_sheets(settings, specs, skipped) if settings.pairs is not None else None

    try:
        perceptual: Distance | None = perceptual_distance()
    except PerceptualUnavailable as reason:
        perceptual = None
        say(f"no perceptual distance: {reason}")
    settings.out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    grids: list[dict[str, Any]] = []
    report = Report(skipped=skipped)
    context = dict(settings=settings, setting=setting, photo_note=photo_note, methods=methods, skipped=skipped,
                   invoked_as=invoked_as, pairs=pairs)
    for number, path in enumerate(photos, 1):
        source = path.relative_to(settings.data).as_posix()
        try:
            samples = make_samples(read_photo(path), source, setting, settings.seed, settings.crops)
        except (OSError, ValueError) as error:
            report.failures.append(f"{source}: cannot be read ({error})")
            say(f"[{number}/{len(photos)}] {source}: skipped, cannot be read ({error})")
            continue
        for sample in samples:
            record, outputs = run_sample(sample, methods, perceptual)
            records.append(record)
            report.failures += [f"{sample.label}: {name}: {row['error']}"
                                for name, row in record["results"].items() if "error" in row]
            if len(grids) < settings.grids:
                grid_name = f"grid-{setting.name}-{len(grids) + 1}.png"
                write_grid(settings.out / grid_name, sample, outputs)
                grids.append({"file": grid_name, "sample": sample.label,
                              "columns": ["input", *[m.label for m in methods], "original"]})
            if pairs is not None and outputs[pairs.ours] is not None and outputs[pairs.peer] is not None:
                pairs.add(sample, outputs[pairs.ours], outputs[pairs.peer])
            say(progress_line(number, len(photos), sample, record))
        write_results(settings.out, records, grids, **context)  # after every photo: a stopped run keeps its rows
    report.samples = len(records)
    report.summary = method_summaries(methods, records)
    write_results(settings.out, records, grids, **context)
    say(f"wrote {settings.out / 'results.md'} ({len(records)} samples)")
    return report


def pair_sheets(settings: EvalSettings, specs: list[str], skipped: dict[str, str]) -> PairSheets:
    """The writer of the blind pairs: ours is the first method asked for that is not the peer; both must run."""
    peer = settings.pairs
    ours = next((spec for spec in specs if spec != peer), None)
    if ours is None:
        raise ValueError(f"--pairs {peer}: name ours in --methods too (the first method that is not {peer})")
    for role, spec in (("ours", ours), ("the peer", peer)):
        if spec in skipped:
            raise ValueError(f"--pairs: {role}, {spec}, cannot run here: {skipped[spec]}")
    return PairSheets(settings.out / FOLDER, ours, peer, settings.seed)


def resolve_methods(specs: list[str] | None, seed: int) -> tuple[list[Method], dict[str, str]]:
    if specs is None:
        return available_methods(seed)
    methods, skipped, seen = [], {}, set()
    for spec in specs:
        if spec in seen:
            continue
        seen.add(spec)
        try:
            methods.append(make_method(spec, seed))
        except Unavailable as reason:
            skipped[spec] = str(reason)
    return methods, skipped


def warm_up(methods: list[Method]) -> tuple[list[Method], dict[str, str]]:
    """One call per method on a small image before timing (networks load, libraries initialise); a method that
    fails here is skipped with the error (missing weights show up here)."""
    y, x = np.mgrid[:64, :64]
    image = np.stack([x * 3 + 20, y * 3 + 20, (x + y) + 60], -1).astype(np.uint8)
    hole = centre_hole(64, 16)
    ready, failed = [], {}
    for method in methods:
        try:
            method.run(image, hole)
        except Exception as error:  # noqa: BLE001 - any failure of a method is reported, not raised
            failed[method.label] = f"failed on a test image: {type(error).__name__}: {error}"
        else:
            ready.append(method)
    return ready, failed


def run_sample(sample: Sample, methods: list[Method], perceptual: Distance | None = None
               ) -> tuple[dict[str, Any], dict[str, np.ndarray | None]]:
    given = sample.given()
    results: dict[str, dict[str, Any]] = {}
    outputs: dict[str, np.ndarray | None] = {}
    for method in methods:
        start = time.perf_counter()
        try:
            out = method.run(given, sample.hole)
        except Exception as error:  # noqa: BLE001 - one method failing on one image must not stop the run
            results[method.label] = {"error": f"{type(error).__name__}: {error}"}
            outputs[method.label] = None
            continue
        seconds = time.perf_counter() - start
        results[method.label] = {**hole_scores(out, sample.image, sample.hole, perceptual), "seconds": seconds}
        outputs[method.label] = out
    record = {"file": sample.source, "crop_number": sample.number, "scale": sample.scale,
              "crop": {"top": sample.top, "left": sample.left, "size": int(sample.image.shape[0])},
              "hole_fraction": float(sample.hole.mean()), "original_realism": realism(sample.image, sample.hole),
              "results": results}
    return record, outputs


def progress_line(number: int, total: int, sample: Sample, record: dict[str, Any]) -> str:
    parts = []
    for name, row in record["results"].items():
        parts.append(f"{name} failed" if "error" in row else
                     f"{name} {row['psnr']:.1f} dB {row['perceptual']:.3f} {row['realism']:.2f} {row['seconds']:.2f}s")
    return (f"[{number}/{total}] {sample.label} (hole {record['hole_fraction']:.0%}, original's realism "
            f"{record['original_realism']:.2f}): PSNR, perceptual, realism: " + ", ".join(parts))
