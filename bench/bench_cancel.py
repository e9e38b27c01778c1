"""How soon a fill stops after Ctrl-C: the longest stretch between two of the engine's cancel checks, per preset, on
a 1536x1024 photo with a 500x400 hole (a cancel asked for at the worst moment waits that long).

Prints its figures and writes them into docs/benchmarks.md, between the `cancel-bench` markers.

    .venv/bin/python bench/bench_cancel.py
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from bench_engine import load_photo
from bench_peers import compute
from report import write_section  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
sys.path.insert(0, str(ROOT))
SIZE = (1024, 1536)  # height, width
HOLE = (slice(300, 700), slice(500, 1000))
PRESETS = ("preview", "default", "paper")


def longest_gap(image: np.ndarray, mask: np.ndarray, preset: str) -> tuple[float, str, float]:
    """(longest seconds between cancel checks, where it ended, the whole fill's seconds)."""
    from engine import fill, get_preset

    checks: list[tuple[float, str]] = []

    def cancel() -> bool:
        # The innermost of our engine's frames past the cancel plumbing (progress.py): the stage that just ended.
        ours = [frame for frame in traceback.extract_stack()
                if Path(frame.filename).parent == ENGINE and Path(frame.filename).name != "progress.py"]
        checks.append((time.monotonic(), f"{Path(ours[-1].filename).name}:{ours[-1].name}" if ours else "?"))
        return False

    started = time.monotonic()
    fill(image, mask, get_preset(preset), cancel=cancel)
    checks.append((time.monotonic(), "the end"))
    gaps = [(later[0] - earlier[0], later[1]) for earlier, later in zip(checks, checks[1:], strict=False)]
    gap, where = max(gaps)
    return gap, where, time.monotonic() - started


def main() -> int:
    from PIL import Image

    image = np.asarray(Image.fromarray(load_photo("astronaut")).resize(SIZE[::-1], Image.Resampling.LANCZOS))
    mask = np.zeros(SIZE, np.uint8)
    mask[HOLE] = 255
    load = os.getloadavg()[0]
    rows = []
    for preset in PRESETS:
        gap, where, total = longest_gap(image, mask, preset)
        rows.append(f"| {preset} | {gap:.2f} s | {where} | {total:.1f} s |")
        print(rows[-1], flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"## Cancel latency (`bench/bench_cancel.py`)\n\n"
               f"{stamp}, {compute()}, {os.cpu_count()} cores, load average "
               f"{load:.2f} at the start. The longest stretch between two cancel checks of one fill (1536x1024 "
               f"astronaut, 500x400 hole): a Ctrl-C at the worst moment waits that long.\n\n"
               "| preset | longest stretch | ending at | whole fill |\n|---|---|---|---|\n" + "\n".join(rows) + "\n\n")
    write_section(ROOT / "docs" / "benchmarks.md", "cancel-bench", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
