"""What a JPEG result does to the known pixels of real camera JPEGs: the whole photo re-encoded (what `fill` did
before issue 15: quality 95, 4:4:4) against the source's untouched blocks kept (daemon/jpeg_blocks.py), with the
time each takes to write.

A "fill" here paints an elliptical hole a quarter of the photo's shorter side across (the pixels written do not
matter to what is measured: which known pixels change). Prints a table and writes it into docs/benchmarks.md between
the `jpeg-bench` markers. Needs the photos folder of `neural-fill photos` (its camera JPEGs come from Debian's
mate-backgrounds and PyPI's mvtb-data).

    .venv/bin/python bench/bench_jpeg.py [--photos /var/cache/neural-fill/photo-work]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image
from report import write_section  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from daemon.files import read_image, write_image  # noqa: E402

CAMERA_JPEGS = [  # camera JPEGs with their maker's EXIF, as photographers bring them
    "mate-backgrounds/usr/share/backgrounds/mate/nature/Storm.jpg",  # Canon EOS 400D
    "mate-backgrounds/usr/share/backgrounds/mate/nature/Wood.jpg",  # Konica Minolta DiMAGE Z5
    "mate-backgrounds/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg",  # Sony DSC-RX100M4
    "mvtb-data/mvtbdata/images/church.jpg",  # Panasonic DMC-FZ30
]


def known_change(source: np.ndarray, result: np.ndarray, hole: np.ndarray) -> tuple[float, int]:
    """Share of known pixels that changed (%), and the largest change in levels."""
    diff = np.abs(result.astype(int) - source.astype(int))
    diff = diff.max(axis=-1) if diff.ndim == 3 else diff
    return 100.0 * float((diff[~hole] > 0).mean()), int(diff[~hole].max())


def measure(path: Path) -> dict:
    source = read_image(path)
    height, width = source.shape[:2]
    rows, cols = np.mgrid[:height, :width]
    radius = min(height, width) / 8
    hole = ((rows - height / 2) / radius) ** 2 + ((cols - width / 2) / (1.4 * radius)) ** 2 <= 1
    filled = source.copy()
    filled[hole] = 128
    row = {"photo": path.name, "size": f"{width}x{height}"}
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        buffer = io.BytesIO()
        Image.fromarray(filled).save(buffer, format="JPEG", quality=95, subsampling=0)
        row["old_s"] = time.perf_counter() - started
        buffer.seek(0)
        row["old_pct"], row["old_max"] = known_change(source, np.asarray(Image.open(buffer)), hole)
        started = time.perf_counter()
        write_image(Path(scratch) / "out.jpg", filled, like=path, like_pixels=source)  # as fill and batch call it
        row["new_s"] = time.perf_counter() - started
        row["new_pct"], row["new_max"] = known_change(source, read_image(Path(scratch) / "out.jpg"), hole)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("/var/cache/neural-fill/photo-work"))
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = [measure(args.photos / name) for name in CAMERA_JPEGS if (args.photos / name).exists()]
    if not rows:
        raise SystemExit(f"no camera JPEG found under {args.photos}: run `neural-fill photos` first")
    lines = ["| photo | size | whole photo re-encoded (q95, 4:4:4): known pixels changed | max levels | s "
             "| untouched blocks kept: known pixels changed | max levels | s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['photo']} | {row['size']} | {row['old_pct']:.1f} % | {row['old_max']} | "
                     f"{row['old_s']:.2f} | {row['new_pct']:.3f} % | {row['new_max']} | {row['new_s']:.2f} |")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"## A JPEG result's known pixels (`bench/bench_jpeg.py`)\n\nMeasured {when}, load average {load:.2f}. "
               "An elliptical hole a quarter of the shorter side across, painted grey, written as JPEG from each "
               "camera JPEG. The pixels that still change with the blocks kept are the rest of the hole's 8x8/16x16 "
               "cells and, with subsampled chroma, the one pixel beside them that the decoder's chroma upsampling "
               "blends in.\n\n" + "\n".join(lines) + "\n")
    print(section)
    write_section(ROOT / "docs" / "benchmarks.md", "jpeg-bench", section)


if __name__ == "__main__":
    main()
