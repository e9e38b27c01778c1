"""Ray's cost per file, and throughput with 1 and 2 actors, against the same files filled in one process.

A folder of photos (the astronaut, cut into 256 px tiles with a 64 px centre hole each) is filled with the `preview`
preset three ways: in this process (`neural-fill batch` without --ray), on 1 Ray actor with this machine's threads,
and on 2 Ray actors sharing them. Each run's steady pace is the time from its first finished file to its last, over
the files in between, so that starting Ray and loading the networks (once per run, or once per actor) are counted
apart. Prints the figures with the load average and writes them into docs/benchmarks.md between the
`cluster-bench` markers. Run it on an otherwise idle machine (a few minutes).

    .venv/bin/python bench/bench_cluster.py [--files 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from bench_engine import load_photo
from report import write_section  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from daemon.batch import run_batch  # noqa: E402
from daemon.batch.cluster import run_cluster_batch  # noqa: E402
from daemon.files import write_image  # noqa: E402
from engine.device import usable_cores  # noqa: E402
from engine.options import get_preset  # noqa: E402

TILE, HOLE = 256, 64


def make_folder(root: Path, files: int) -> tuple[Path, Path]:
    photo = load_photo("astronaut")
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    mask = np.zeros((TILE, TILE), np.uint8)
    mask[(TILE - HOLE) // 2:(TILE + HOLE) // 2, (TILE - HOLE) // 2:(TILE + HOLE) // 2] = 255
    for number in range(files):
        top, left = 128 * (number % 3), 128 * ((number // 3) % 3)
        write_image(images / f"tile{number:02d}.png", photo[top:top + TILE, left:left + TILE])
        write_image(masks / f"tile{number:02d}.png", mask)
    return images, masks


def timed(run, out: Path) -> dict:
    finished: list[float] = []
    start = time.perf_counter()
    report = run(out, lambda outcome: finished.append(time.perf_counter()))
    total = time.perf_counter() - start
    assert report.count("done") == len(finished) and not report.failed, report.summary()
    pace = (finished[-1] - finished[0]) / (len(finished) - 1)
    return {"total": total, "pace": pace, "files": len(finished), "first": finished[0] - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12)
    args = parser.parse_args()
    import ray

    threads = usable_cores()
    options = get_preset("preview", seed=1)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        images, masks = make_folder(root, args.files)
        rows = {"in this process": timed(lambda out, seen: run_batch(images, masks, out, [], options, quiet=True,
                                                                     on_outcome=seen), root / "local")}
        ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        try:
            for workers in (1, 2):
                rows[f"Ray, {workers} actor{'s' * (workers > 1)}"] = timed(
                    lambda out, seen, workers=workers: run_cluster_batch(images, masks, out, options, workers=workers,
                                                                         quiet=True, on_outcome=seen),
                    root / f"ray{workers}")
        finally:
            ray.shutdown()
    local = rows["in this process"]["pace"]
    one = rows["Ray, 1 actor"]["pace"]
    lines = ["| run | s in all | s to the first file | s per file, steady | files per minute | x this process |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['total']:.1f} | {row['first']:.1f} | {row['pace']:.2f} | "
                     f"{60 / row['pace']:.1f} | {local / row['pace']:.2f} |")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## Batch on Ray (`bench/bench_cluster.py`)\n\nMeasured {when} on {threads} CPU threads, load average "
        f"{load:.2f} at the start. {args.files} tiles of {TILE} px with a {HOLE} px centre hole, `preview`; one "
        f"actor gets all {threads} threads, two share them ({max(1, threads // 2)} each). \"Steady\": from the first "
        "finished file to the last, so that starting Ray and loading the networks are counted apart (in \"to the "
        "first file\").\n\n" + "\n".join(lines) + "\n\n"
        f"Ray's cost per file on one actor: {one - local:+.3f} s, {100 * (one - local) / local:+.1f} % of a "
        f"`preview` fill in this process (target under 5 %). Two actors of {max(1, threads // 2)} thread"
        f"{'s' * (threads >= 4)} each fill {one / rows['Ray, 2 actors']['pace']:.2f}x as many files per minute as "
        f"one of {threads}: they share this machine's {threads} cores, so this is what fills side by side gain over "
        "one fill's threads (its serial parts leave cores idle), not what a second node adds; docs/cluster.md says "
        "how it scales on paper.\n")
    print(section)
    write_section(ROOT / "docs" / "benchmarks.md", "cluster-bench", section)


if __name__ == "__main__":
    main()
