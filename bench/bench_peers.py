"""Speed side by side with the peers: the presets, Resynthesizer (GIMP's Heal Selection) and PatchMatch, in one
process, on the same 512x512 photos with the 256 px centre hole, in turns per photo so that load changes hit every
method alike.

Prints its figures and writes them into docs/benchmarks.md, between the `peer-bench` markers. Needs the `eval`
extra's peers (`pip install resynthesizer pypatchmatch`); a peer that cannot run is reported as skipped.

    .venv/bin/python bench/bench_peers.py [--photos N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench_engine import HOLE, PHOTOS, SIDE, centre_hole, load_photo
from report import write_section  # bench/ is on sys.path when a script here runs

from daemon.evaluation.metrics import hole_psnr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
METHODS = ("resynthesizer", "patchmatch", "preview", "full")  # full = the default preset
REFERENCE = "resynthesizer"


def main() -> int:
    from daemon.evaluation.methods import Unavailable, make_method
    from daemon.evaluation.samples import HOLE_GREY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=len(PHOTOS), help=f"use the first N photos of {PHOTOS}")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file (relative to the repo root)")
    args = parser.parse_args()
    methods, skipped = {}, {}
    for name in METHODS:
        try:
            methods[name] = make_method(name)
        except Unavailable as reason:
            skipped[name] = str(reason)
    warm = load_photo(PHOTOS[0])[:128, :128]
    for method in methods.values():  # loads networks and libraries outside the timings
        method.run(warm, centre_hole((128, 128), 32) > 0)
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in methods}
    psnrs: dict[str, list[float]] = {name: [] for name in methods}
    photos = PHOTOS[:max(1, args.photos)]
    for turn, photo in enumerate(photos):
        original = load_photo(photo)
        hole = centre_hole((SIDE, SIDE), HOLE) > 0
        given = original.copy()
        given[hole] = HOLE_GREY
        names = list(methods)
        names = names[turn % len(names):] + names[:turn % len(names)]
        for name in names:
            start = time.perf_counter()
            result = methods[name].run(given, hole)
            times[name].append(time.perf_counter() - start)
            psnrs[name].append(hole_psnr(result, original, hole))
            print(f"{photo:10s} {name:14s} {times[name][-1]:6.2f} s  {psnrs[name][-1]:5.2f} dB", flush=True)
    load_after = os.getloadavg()
    section = report(times, psnrs, skipped, photos, load_before, load_after)
    print(section)
    write_section(ROOT / args.out, "peer-bench", section)
    return 0


def compute() -> str:
    from engine.device import describe_compute, resolve_device, resolve_precision

    device = resolve_device("auto")
    return describe_compute(device, resolve_precision("auto", device))


def report(times: dict[str, list[float]], psnrs: dict[str, list[float]], skipped: dict[str, str],
           photos: tuple[str, ...], load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    median = {name: statistics.median(values) for name, values in times.items()}
    reference = median.get(REFERENCE)
    lines = [
        "## Side by side with the peers (`bench/bench_peers.py`)",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {compute()}, {os.cpu_count()} CPUs, "
        f"load average {load_before[0]:.2f} before and {load_after[0]:.2f} after; photos {', '.join(photos)} "
        f"({SIDE}x{SIDE}, {HOLE}x{HOLE} centre hole), the methods in turns, one process, after a warm-up.",
        "",
        f"| method | median s | x {REFERENCE} | mean hole PSNR dB |",
        "|---|---:|---:|---:|",
    ]
    for name, value in median.items():
        ratio = f"{value / reference:.2f}" if reference else "-"
        lines.append(f"| {name} | {value:.2f} | {ratio} | {statistics.mean(psnrs[name]):.2f} |")
    lines += ["", "`full` is the `default` preset."]
    lines += [f"- {name} skipped: {reason}" for name, reason in skipped.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
