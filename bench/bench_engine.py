"""Engine benchmark: speed, peak memory and hole PSNR of the presets on this machine's CPU.

Prints its figures and writes them into docs/benchmarks.md, between the `engine-bench` markers (other sections of
that file are kept). Every measured fill runs in a fresh worker process (this script with --worker), so each
preset's peak RSS is its own; a tiny warm-up fill first keeps the one-time model load out of the timings.

    .venv/bin/python bench/bench_engine.py            # full run (several minutes on 2 cores)
    .venv/bin/python bench/bench_engine.py --quick    # smoke run: preview + the 4000x3000 case, one photo
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from report import write_section  # bench/ is on sys.path when a script here runs

from daemon.evaluation.metrics import hole_psnr

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("preview", "default", "paper")
# skimage.data photos: the colour ones, then the grey textures (spread to RGB).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel")
SIDE = 512  # the test photos are SIDE x SIDE
HOLE = 256  # centre hole, HOLE x HOLE
BIG = (3000, 4000)  # height, width of the large photo
WARMUP_SIDE = 64

TARGET_PREVIEW_S = 2.0
TARGET_DEFAULT_S = 15.0
TARGET_TIME_RATIO = 0.2
TARGET_PSNR_DROP_DB = 0.2
TARGET_RSS_MB = 2500.0
TARGET_BIG_RATIO = 1.3


# ---------------------------------------------------------------- photos and metrics


def load_photo(name: str) -> np.ndarray:
    """A skimage.data photo as HxWx3 uint8, centre-cropped to SIDE (or its largest square, resized to SIDE)."""
    from PIL import Image
    from skimage import data

    photo = getattr(data, name)()
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=2)
    height, width = photo.shape[:2]
    take = min(height, width, SIDE)
    top, left = (height - take) // 2, (width - take) // 2
    square = photo[top:top + take, left:left + take, :3]
    if take < SIDE:
        square = np.asarray(Image.fromarray(square).resize((SIDE, SIDE), Image.Resampling.LANCZOS))
    return np.ascontiguousarray(square)


def source_note(name: str) -> str:
    from skimage import data

    height, width = getattr(data, name)().shape[:2]
    side = min(height, width)
    how = "centre 512 crop" if side >= SIDE else f"centre {side} crop, resized to 512"
    return f"{width}x{height}, {how}"


def mirror_tile(photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The photo at the centre of a larger canvas filled by mirror-tiling it (np.pad 'symmetric')."""
    pad_h, pad_w = shape[0] - photo.shape[0], shape[1] - photo.shape[1]
    pads = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    return np.pad(photo, pads, mode="symmetric")


def centre_hole(shape: tuple[int, int], side: int) -> np.ndarray:
    """A uint8 mask (255 = fill) with a side x side square at the centre."""
    mask = np.zeros(shape, np.uint8)
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    mask[top:top + side, left:left + side] = 255
    return mask


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# ---------------------------------------------------------------- worker (one preset, one process)


def timed_fill(fill: Any, image: np.ndarray, mask: np.ndarray, options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Fill once; wall time and per-scale times from the Progress events.

    Time between two events goes to the later event's scale when that is a synthesis report (reports come after
    the work), otherwise to 'other' (prepare, content set-up, detail, blend). So scale s runs from the event
    before its first report to its last one: its patch-bank set-up included, and for scale 1 the content prediction.
    """
    events: list[tuple[float, Any]] = []
    cpu, start = time.process_time(), time.perf_counter()
    result = fill(image, mask, options, progress=lambda p: events.append((time.perf_counter(), p)))
    end, cpu = time.perf_counter(), time.process_time() - cpu
    buckets: dict[str, float] = {}
    previous = start
    for stamp, event in events:
        key = str(event.scale) if event.stage == "synthesis" and event.scale else "other"
        buckets[key] = buckets.get(key, 0.0) + stamp - previous
        previous = stamp
    buckets["other"] = buckets.get("other", 0.0) + end - previous
    return result, {"wall_s": end - start, "cpu_s": cpu, "scales": {k: v for k, v in buckets.items() if k != "other"},
                    "other_s": buckets["other"]}


def make_case(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) for one case of a job: a test photo, mirror-tiled out to `shape` if given."""
    photo = load_photo(case["photo"])
    shape = tuple(case.get("shape", (SIDE, SIDE)))
    image = photo if shape == photo.shape[:2] else mirror_tile(photo, shape)
    return image, centre_hole(shape, HOLE)


def warm_up(fill: Any, options: Any) -> dict[str, float]:
    """Load the model (timed alone), then one tiny fill, so later timings see a warm process."""
    from PIL import Image

    from engine.device import resolve_device
    from engine.vgg import load_vgg

    start = time.perf_counter()
    load_vgg(resolve_device(options.device))
    loaded = time.perf_counter()
    small = np.asarray(Image.fromarray(load_photo("astronaut")).resize((WARMUP_SIDE, WARMUP_SIDE)))
    fill(small, centre_hole(small.shape[:2], WARMUP_SIDE // 2), options)
    return {"load_s": loaded - start, "warmup_fill_s": time.perf_counter() - loaded,
            "rss_after_warmup_mb": peak_rss_mb()}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """The worker's job: warm up, then time each case in turn, recording peak RSS after each."""
    start = time.perf_counter()
    import torch

    from engine import get_preset
    from engine.device import describe_compute, resolve_device, resolve_precision
    from engine.pipeline import fill

    imported = time.perf_counter() - start
    options = get_preset(job["preset"], **job.get("overrides", {}))
    report: dict[str, Any] = {"preset": job["preset"], "iterations": list(options.iterations_per_scale()),
                              "working_size": options.working_size, "torch": torch.__version__,
                              "import_s": imported, **warm_up(fill, options)}
    report["threads"] = torch.get_num_threads()
    device = resolve_device(options.device)
    report["compute"] = describe_compute(device, resolve_precision(options.precision, device), options.threads)
    cases = []
    for case in job["cases"]:
        image, mask = make_case(case)
        result, timing = timed_fill(fill, image, mask, options)
        cases.append({**case, **timing, "psnr_db": hole_psnr(result, image, mask), "peak_rss_mb": peak_rss_mb()})
    report["cases"] = cases
    return report


def run_worker(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh process of this script; its report comes back as JSON on the last stdout line."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.stderr.strip():
        sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"worker for {job['preset']} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- machine facts


def warn_if_busy(load: float) -> None:
    """Torch takes every core: other work on the machine makes its threads wait on each other."""
    if load >= 0.5:
        print(f"warning: load average {load:.2f} at start: other processes are using the CPU, the timings will be "
              "slower and noisier than on an idle machine", file=sys.stderr)


def command_line() -> str:
    python = Path(sys.executable)
    if python.is_relative_to(Path.cwd()):
        python = python.relative_to(Path.cwd())
    return shlex.join([str(python), *sys.argv])


# ---------------------------------------------------------------- markdown


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def f1(x: float) -> str:
    return f"{x:.1f}"


def f2(x: float) -> str:
    return f"{x:.2f}"


def speed_table(runs: dict[str, dict[str, Any]]) -> str:
    scales = max(len(r["iterations"]) for r in runs.values())
    header = ["preset", "working size", "iterations/scale", "wall s", "CPU s",
              *[f"scale {s} s" for s in range(1, scales + 1)], "other s", "model load s", "peak RSS MB"]
    rows = []
    for name, run in runs.items():
        case = run["cases"][0]
        per_scale = [f2(case["scales"][str(s)]) if str(s) in case["scales"] else "-" for s in range(1, scales + 1)]
        rows.append([name, run["working_size"], "/".join(map(str, run["iterations"])), f2(case["wall_s"]),
                     f2(case["cpu_s"]), *per_scale, f2(case["other_s"]), f2(run["load_s"]), f1(case["peak_rss_mb"])])
    return table(header, rows)


def big_table(big: dict[str, Any], small: dict[str, Any]) -> str:
    case, ref = big["cases"][0], small["cases"][0]
    rows = [[f"{SIDE}x{SIDE}", f2(ref["wall_s"]), "1.00", f2(ref["psnr_db"]), f1(ref["peak_rss_mb"])],
            [f"{BIG[1]}x{BIG[0]}", f2(case["wall_s"]), f2(case["wall_s"] / ref["wall_s"]), f2(case["psnr_db"]),
             f1(case["peak_rss_mb"])]]
    return table(["photo", "wall s", "ratio", "hole PSNR dB", "peak RSS MB"], rows)


def quality_tables(runs: dict[str, dict[str, Any]]) -> tuple[str, str, dict[str, float]]:
    """Per-photo table, per-preset summary table, and the means by preset."""
    names = list(runs)
    photos = [c["photo"] for c in runs[names[0]]["cases"]]
    rows = []
    for i, photo in enumerate(photos):
        cases = [runs[n]["cases"][i] for n in names]
        rows.append([photo, source_note(photo), *[f2(c["psnr_db"]) for c in cases], *[f2(c["wall_s"]) for c in cases]])
    per_photo = table(["photo", "source", *[f"{n} dB" for n in names], *[f"{n} s" for n in names]], rows)
    means = {n: float(np.mean([c["psnr_db"] for c in runs[n]["cases"]])) for n in names}
    totals = {n: sum(c["wall_s"] for c in runs[n]["cases"]) for n in names}
    summary = table(["preset", "mean hole PSNR dB", "total s", "mean s per photo"],
                    [[n, f2(means[n]), f1(totals[n]), f2(totals[n] / len(photos))] for n in names])
    return per_photo, summary, {**{f"psnr:{n}": means[n] for n in names}, **{f"time:{n}": totals[n] for n in names}}


def target_rows(runs: dict[str, dict[str, Any]], big: dict[str, Any], ref: str,
                stats: dict[str, float]) -> list[list[str]]:
    def row(what: str, value: float | None, fmt: str, ok: bool | None) -> list[str]:
        shown = "not measured" if value is None else fmt.format(value)
        return [what, shown, "n/a" if ok is None else ("yes" if ok else "no")]

    wall = {n: r["cases"][0]["wall_s"] for n, r in runs.items()}
    rss = max(c["peak_rss_mb"] for r in [*runs.values(), big] for c in r["cases"])
    big_ratio = big["cases"][0]["wall_s"] / wall[ref]
    has_paper = "paper" in runs and "default" in runs
    ratio = stats["time:default"] / stats["time:paper"] if has_paper else None
    drop = stats["psnr:default"] - stats["psnr:paper"] if has_paper else None
    return [
        row(f"preview <= {TARGET_PREVIEW_S:g} s (512x512)", wall.get("preview"), "{:.2f} s",
            None if "preview" not in wall else wall["preview"] <= TARGET_PREVIEW_S),
        row(f"default <= {TARGET_DEFAULT_S:g} s (512x512)", wall.get("default"), "{:.2f} s",
            None if "default" not in wall else wall["default"] <= TARGET_DEFAULT_S),
        row(f"default time <= {TARGET_TIME_RATIO:g}x paper (photo set)", ratio, "{:.3f}x",
            None if ratio is None else ratio <= TARGET_TIME_RATIO),
        row(f"default PSNR at most {TARGET_PSNR_DROP_DB:g} dB below paper (mean, default - paper)", drop,
            "{:+.2f} dB", None if drop is None else drop >= -TARGET_PSNR_DROP_DB),
        row(f"peak RSS < {TARGET_RSS_MB:g} MB (largest of all workers)", rss, "{:.0f} MB", rss < TARGET_RSS_MB),
        row(f"{BIG[1]}x{BIG[0]} within {TARGET_BIG_RATIO:g}x of 512x512 ({ref})", big_ratio, "{:.2f}x",
            big_ratio <= TARGET_BIG_RATIO),
    ]


def render(args: argparse.Namespace, runs: dict[str, dict[str, Any]], big: dict[str, Any], ref: str) -> str:
    first = next(iter(runs.values()))
    per_photo, summary, stats = quality_tables(runs)
    load = " / ".join(", ".join(f"{x:.2f}" for x in loads) for loads in (args.load_at_start, os.getloadavg()))
    parts = [
        "## Engine benchmark",
        f"Command: `{command_line()}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- torch {first['torch']}, {first['compute']} ({os.cpu_count()} logical cores)\n"
        f"- load average (1, 5, 15 min) at start / end: {load}; other work on the machine slows the figures "
        "down (CPU s well under threads x wall s is a sign of it)"
        + (f"\n- options overridden for every preset: `{json.dumps(args.overrides)}`" if args.overrides else "")
        + ("\n- quick run: preview only, one photo; the large-photo case uses preview too" if args.quick else ""),
        "Each preset runs in a fresh process: it loads the model, fills a 64x64 warm-up image, then the timed "
        "fills follow. Wall time excludes the model load (shown apart); CPU s is the worker's user+sys time in "
        "the fill. Per-scale time runs from the progress "
        "event before a scale's first report to its last report (patch-bank set-up included; scale 1 also holds "
        "the content prediction); 'other' is the rest (checks, crop, detail, blend). Peak RSS is the worker's "
        "ru_maxrss right after the fill, model included.",
        f"### Speed: {SIDE}x{SIDE} astronaut, {HOLE}x{HOLE} centre hole",
        speed_table(runs),
        f"### Large photo: {BIG[1]}x{BIG[0]}, same {HOLE}x{HOLE} centre hole, `{ref}`",
        f"The {SIDE}x{SIDE} astronaut mirror-tiled (`np.pad(..., mode='symmetric')`) out to {BIG[1]}x{BIG[0]}, the "
        "original at the centre, so the crop around the hole holds the same pixels as the small case. "
        "Each row is its own process.",
        big_table(big, runs[ref]),
        f"### Quality: hole PSNR on skimage.data photos ({SIDE}x{SIDE}, {HOLE}x{HOLE} centre hole)",
        "PSNR over the hole's pixels only, 8-bit RGB, against the original photo; grey textures spread to RGB.",
        per_photo,
        summary,
    ]
    if "default" in runs and "paper" in runs:
        parts.append(f"default - paper: {stats['psnr:default'] - stats['psnr:paper']:+.2f} dB mean hole PSNR, "
                     f"time ratio default/paper {stats['time:default'] / stats['time:paper']:.3f}.")
    parts += ["### Targets", table(["target", "measured", "reached"], target_rows(runs, big, ref, stats))]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: preview and the large photo, one photo")
    parser.add_argument("--photos", type=int, default=len(PHOTOS), help=f"use the first N photos of {PHOTOS}")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file (relative to the repo root)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=JSON",
                        help="override an option for every preset, e.g. --set 'iterations=[2]' (smoke runs)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.overrides = dict(parse_override(o) for o in args.overrides)
    return args


def parse_override(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_job(json.loads(args.worker))))
        return
    args.load_at_start = os.getloadavg()
    warn_if_busy(args.load_at_start[0])
    presets = ("preview",) if args.quick else PRESETS
    photos = PHOTOS[:1] if args.quick else PHOTOS[:max(1, args.photos)]
    ref = "preview" if args.quick else "default"
    runs = {}
    for name in presets:
        print(f"running {name} on {len(photos)} photo(s)...", file=sys.stderr, flush=True)
        runs[name] = run_worker({"preset": name, "overrides": args.overrides,
                                 "cases": [{"photo": p} for p in photos]})
    print(f"running {ref} on the {BIG[1]}x{BIG[0]} photo...", file=sys.stderr, flush=True)
    big = run_worker({"preset": ref, "overrides": args.overrides,
                      "cases": [{"photo": PHOTOS[0], "shape": list(BIG)}]})
    section = render(args, runs, big, ref)
    print(section)
    write_section(ROOT / args.out, "engine-bench", section)  # an absolute --out stays as it is


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
