"""`neural-fill eval`: run fill methods on photos with masks and score them in the hole.

Takes a folder of photos (eval_photos), cuts seeded crops with a hole (eval_samples: the paper's Table 1 setting
`centre128`, a bigger `centre512`, or free-form strokes), lets every method (eval_methods) fill the hole, scores
each result against the original in the hole (eval_metrics: L1, L2, PSNR, SSIM, and wall time per image), and
writes results.md, results.json (eval_report) and comparison grids (eval_grids).

Loads no torch until a method is built, so `neural-fill` starts as fast with the command registered.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .eval_grids import write_grid
from .eval_methods import METHODS, Method, Unavailable, available_methods, make_method
from .eval_metrics import hole_scores
from .eval_perceptual import Distance, PerceptualUnavailable, perceptual_distance
from .eval_photos import list_photos, read_photo
from .eval_report import method_summaries, write_results
from .eval_samples import MASK_SETTINGS, Sample, centre_hole, make_samples

Log = Callable[[str], None]


@dataclass
class EvalSettings:
    data: Path
    out: Path
    masks: str = "centre128"
    methods: list[str] | None = None  # None: every registered method (those that cannot run are skipped)
    limit: int | None = None
    seed: int = 0
    crops: int = 1  # crops per photo
    grids: int = 4  # comparison grids for the first this many samples
    quiet: bool = False


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

    methods, skipped = resolve_methods(settings.methods, settings.seed)
    methods, failed_warm_up = warm_up(methods)
    skipped.update(failed_warm_up)
    for name, reason in skipped.items():
        say(f"skipped {name}: {reason}")
    if not methods:
        raise ValueError("no method can run here: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))

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
                   invoked_as=invoked_as)
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
            say(progress_line(number, len(photos), sample, record))
        write_results(settings.out, records, grids, **context)  # after every photo: a stopped run keeps its rows
    report.samples = len(records)
    report.summary = method_summaries(methods, records)
    write_results(settings.out, records, grids, **context)
    say(f"wrote {settings.out / 'results.md'} ({len(records)} samples)")
    return report


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
              "hole_fraction": float(sample.hole.mean()), "results": results}
    return record, outputs


def progress_line(number: int, total: int, sample: Sample, record: dict[str, Any]) -> str:
    parts = []
    for name, row in record["results"].items():
        parts.append(f"{name} failed" if "error" in row else
                     f"{name} {row['psnr']:.1f} dB {row['perceptual']:.3f} {row['seconds']:.2f}s")
    return (f"[{number}/{total}] {sample.label} (hole {record['hole_fraction']:.0%}): PSNR, perceptual: "
            + ", ".join(parts))


# ------------------------------------------------------------------------------------------------ the command


def add_command(commands: argparse._SubParsersAction) -> None:
    """Register `eval` on the `neural-fill` subcommands."""
    names = ", ".join(list(METHODS) + ["content-only (when its weights exist)"])
    parser = commands.add_parser(
        "eval", help="score fill methods on photos with masks (L1, L2, PSNR, SSIM, perceptual distance, "
        "sharpness, time)",
        description="Run fill methods on seeded crops of a folder of photos with holes, score each in the hole "
                    "against the original, and write results.md, results.json and comparison grids to --out.",
        epilog=f"Methods: {names}. Options follow the name: full:content=patches:iterations=30/15/6 (any fill "
               "option, tuples with '/', or preset=NAME), telea:radius=3, patchmatch:patch_size=5, gmic:patch=9, "
               "resynthesizer:neighbours=30:probes=200. A peer that is not installed is skipped, with the reason.")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="folder of photos (with a manifest.json, its validation split)")
    parser.add_argument("--masks", default="centre128", choices=list(MASK_SETTINGS),
                        help="centre128: 128 px crops, 64 px centre hole (the paper's Table 1); centre512: 512 px, "
                             "256 px hole; freeform/freeform512: 256/512 px crops, strokes covering 10-30%% "
                             "(default centre128)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="where results.md, results.json and the grids go")
    parser.add_argument("--methods", type=_method_list, default=None, metavar="A,B,...",
                        help="methods to run (default: every one that can run here)")
    parser.add_argument("--limit", type=_positive, default=None, metavar="N", help="only the first N photos")
    parser.add_argument("--crops", type=_positive, default=1, metavar="N", help="crops per photo (default 1)")
    parser.add_argument("--seed", type=_non_negative, default=0,
                        help="seeds the crops, the holes, the engine and PatchMatch (default 0)")
    parser.add_argument("--grids", type=_non_negative, default=4, metavar="N",
                        help="comparison grids for the first N samples (default 4)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(run=run_eval)


def _method_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one method")
    return names


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def run_eval(args: argparse.Namespace) -> int:
    """0 when every method ran on every sample, 1 when some failed on some sample (the results are written
    anyway); bad input raises the CLI's CliError (exit 2)."""
    from .cli import CliError  # late: cli imports this module to register the command

    if not args.data.is_dir():
        raise CliError(f"{args.data}: no such folder")
    settings = EvalSettings(args.data, args.out, args.masks, args.methods, args.limit, args.seed, args.crops,
                            args.grids, args.quiet)
    try:
        report = evaluate(settings, log=lambda line: print(line, flush=True), invoked_as=list(sys.argv))
    except ValueError as error:
        raise CliError(str(error)) from None
    for failure in report.failures:
        print(f"neural-fill: warning: {failure}", file=sys.stderr)
    return 1 if report.failures else 0
