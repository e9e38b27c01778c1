"""Daemon benchmark: the protocol's cost for a large image, and batch throughput with one daemon and with two.

Prints its figures and writes them into docs/benchmarks.md between the `daemon-bench` markers (the engine section
is kept as it is).

(a) Protocol overhead: a daemon (its own process) whose fill is the identity gets a 4000x3000 16-bit RGBA image
    through `Client.fill`, so the round trip holds everything but the method: encoding the frames, sending 96 MB
    over loopback TCP (CURVE, the default on tcp://), the daemon's checks and decoding, the result's encoding,
    the way back and its decoding. That is set against the `default` fill time of a 4000x3000 photo from the
    engine section.
(b) Batch throughput: the same files through `run_batch` on one real daemon, then on two.

    .venv/bin/python bench/bench_daemon.py
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from report import write_section  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
BIG = (3000, 4000)  # height, width
ROUND_TRIPS = 3
TARGET_OVERHEAD = 0.05
BATCH_FILES, BATCH_SIDE, BATCH_HOLE = 8, 256, 96
BATCH_REPEATS = 2  # best of: other work on a shared 2-core machine only ever slows a run down


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_daemon(identity: bool, threads: int | None = None) -> tuple[subprocess.Popen, str]:
    """A daemon in its own process; `threads` limits its torch threads (OMP_NUM_THREADS), None leaves torch's."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    command = [sys.executable, __file__, "--serve", endpoint] + (["--identity"] if identity else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    from daemon.service.client import Client
    from daemon.service.keys import ensure_keys

    ensure_keys()  # tcp:// speaks CURVE: the client must find the keys the daemon would make at its start
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL, env=env)

    with Client(endpoint, timeout=120) as client:
        client.hello()  # waits for the networks to load
    return process, endpoint


def serve(endpoint: str, identity: bool) -> None:
    if identity:  # the daemon's worker looks the fill up at start(): replace it before
        import engine.pipeline

        engine.pipeline.fill = lambda image, mask, options, progress=None, cancel=None: image
    from daemon.cli.serve import serve as serve_daemon

    serve_daemon(endpoint)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---------------------------------------------------------------- (a) protocol overhead


def protocol_overhead() -> dict[str, float]:
    from daemon.service.client import Client
    from daemon.service.pixels import from_bytes, mask_to_frame, to_frame

    rng = np.random.default_rng(0)
    image = rng.integers(0, 65536, (*BIG, 4), dtype=np.uint16)
    mask = np.zeros(BIG, np.uint8)
    mask[1372:1628, 1872:2128] = 255
    started = time.perf_counter()
    frame, _ = to_frame(image), mask_to_frame(mask)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    from_bytes(frame.data, frame.height, frame.width, frame.channels, frame.sample)
    decode_s = time.perf_counter() - started
    process, endpoint = start_daemon(identity=True)
    try:
        with Client(endpoint, timeout=120) as client:
            pings = [client.ping() for _ in range(20)]
            trips = []
            for _ in range(ROUND_TRIPS):
                started = time.perf_counter()
                result = client.fill(image, mask, options={})
                trips.append(time.perf_counter() - started)
                assert np.array_equal(result, image)
    finally:
        stop(process)
    return {"round_trip_s": statistics.median(trips), "best_s": min(trips), "ping_ms": statistics.median(pings) * 1e3,
            "encode_s": encode_s, "decode_s": decode_s, "megabytes": len(frame.data) / 1e6}


def default_fill_seconds() -> float | None:
    """The engine section's 4000x3000 `default` wall time, when that section has one."""
    text = (ROOT / "docs" / "benchmarks.md").read_text() if (ROOT / "docs" / "benchmarks.md").exists() else ""
    found = re.search(r"\| 4000x3000 \| ([\d.]+) \|", text)
    return float(found.group(1)) if found else None


# ---------------------------------------------------------------- (b) batch throughput


def make_batch(folder: Path) -> tuple[Path, Path]:
    from daemon.files import write_image

    images, masks = folder / "images", folder / "masks"
    images.mkdir()
    masks.mkdir()
    y, x = np.mgrid[:BATCH_SIDE, :BATCH_SIDE]
    mask = np.zeros((BATCH_SIDE, BATCH_SIDE), np.uint8)
    low, high = (BATCH_SIDE - BATCH_HOLE) // 2, (BATCH_SIDE + BATCH_HOLE) // 2
    mask[low:high, low:high] = 255
    for number in range(BATCH_FILES):
        rng = np.random.default_rng(number)
        base = np.stack([x * 0.6 + 40, y * 0.5 + 50, (x + y) * 0.3 + 60], -1)
        write_image(images / f"photo{number}.png", np.clip(base + rng.normal(0, 18, base.shape), 0, 255)
                    .astype(np.uint8))
        write_image(masks / f"photo{number}.png", mask)
    return images, masks


# (label, daemons, torch threads per daemon); None = torch's default (every core)
BATCH_SETUPS = (("1 daemon", 1, None), ("2 daemons", 2, None), ("2 daemons, 1 thread each", 2, 1))


def batch_throughput(folder: Path) -> dict[str, tuple[float, float]]:
    """label -> (best wall seconds, 1-minute load average after its runs)."""
    from daemon.batch import run_batch
    from engine.options import get_preset

    images, masks = make_batch(folder)
    options = get_preset("preview")
    seconds = {}
    for threads in dict.fromkeys(threads for _, _, threads in BATCH_SETUPS):
        daemons = [start_daemon(identity=False, threads=threads) for _ in range(2)]
        try:
            endpoints = [endpoint for _, endpoint in daemons]
            # A first batch pays the one-time costs (allocations, caches) on both daemons.
            run_batch(images, masks, folder / f"warm{threads}", endpoints, options, quiet=True)
            for label, count, wanted in BATCH_SETUPS:
                if wanted != threads:
                    continue
                runs = []
                for repeat in range(BATCH_REPEATS):
                    started = time.perf_counter()
                    report = run_batch(images, masks, folder / f"{label.replace(' ', '_')}_{repeat}",
                                       endpoints[:count], options, quiet=True)
                    runs.append(time.perf_counter() - started)
                    assert report.count("done") == BATCH_FILES, report.summary()
                seconds[label] = (min(runs), os.getloadavg()[0])
        finally:
            for process, _ in daemons:
                stop(process)
    return seconds


# ---------------------------------------------------------------- report


def render(overhead: dict[str, float], default_s: float | None, seconds: dict[str, tuple[float, float]],
           load: tuple) -> str:
    from bench_engine import command_line, table
    from bench_peers import compute

    share = overhead["round_trip_s"] / default_s if default_s else None
    share_text = f"{share:.1%}" if share is not None else "n/a (no engine figure)"
    one = seconds[BATCH_SETUPS[0][0]][0]
    rows = [[label, f"{wall:.2f}", f"{BATCH_FILES / wall:.2f}", f"{one / wall:.2f}x", f"{after:.2f}"]
            for label, (wall, after) in ((label, seconds[label]) for label, _, _ in BATCH_SETUPS)]
    return "\n\n".join([
        "## Daemon benchmark",
        f"Command: `{command_line()}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- {compute()} ({os.cpu_count()} logical cores); load average at start / end: "
        f"{', '.join(f'{x:.2f}' for x in load)} / {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"### Protocol overhead: {BIG[1]}x{BIG[0]} 16-bit RGBA ({overhead['megabytes']:.0f} MB each way)",
        "Measured with a daemon in its own process whose fill is the identity, over loopback TCP with CURVE (the "
        "default on tcp://): `Client.fill` "
        "from the array to the array (encode the frames, send, the daemon's checks and decoding, the identity, "
        f"encoding the result, send back, decode), median of {ROUND_TRIPS}. Compared with the engine section's "
        "`default` wall time for a 4000x3000 photo. The image goes in 1 MiB chunks (protocol 2), each copied "
        "once into the daemon's upload buffer; the result comes back as one frame, read with ZeroMQ's copy=False, "
        "and the client's decode of it makes one more copy, into fresh memory.",
        table(["measure", "value"], [
            ["round trip, median (best)", f"{overhead['round_trip_s']:.2f} s ({overhead['best_s']:.2f} s)"],
            ["of which client-side encode / decode, once each", f"{overhead['encode_s']:.2f} s / "
                                                               f"{overhead['decode_s']:.2f} s"],
            ["ping round trip (no data)", f"{overhead['ping_ms']:.2f} ms"],
            ["`default` fill, 4000x3000 (engine section)", f"{default_s:.2f} s" if default_s else "n/a"],
            [f"overhead / fill (target < {TARGET_OVERHEAD:.0%})",
             f"{share_text} ({'reached' if share is not None and share < TARGET_OVERHEAD else 'not reached'})"],
        ]),
        f"### Batch throughput: {BATCH_FILES} images {BATCH_SIDE}x{BATCH_SIDE}, {BATCH_HOLE}x{BATCH_HOLE} hole, "
        "`preview`",
        "`run_batch` over real daemons on loopback TCP (each daemon its own process, warmed up by one batch "
        f"first). Read with care: this machine has {os.cpu_count()} cores and by default torch uses all of them "
        "in each daemon, so two daemons here share the same cores and their threads compete; the last row "
        "limits each daemon to one torch thread (OMP_NUM_THREADS=1), i.e. one core each. What two daemons "
        "are for, two GPUs or two machines, cannot be measured here. Other work on the machine (see the load "
        "average) makes these figures noisy.",
        table(["daemons", f"wall s (best of {BATCH_REPEATS})", "images/s", "speed-up", "load after"], rows),
    ]) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file (relative to the repo root)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # worker mode: run a daemon at this endpoint
    parser.add_argument("--identity", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.identity)
        return
    load = os.getloadavg()
    print("protocol overhead...", file=sys.stderr, flush=True)
    overhead = protocol_overhead()
    print("batch throughput...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as folder:
        seconds = batch_throughput(Path(folder))
    section = render(overhead, default_fill_seconds(), seconds, load)
    print(section)
    write_section(ROOT / args.out, "daemon-bench", section)  # an absolute --out stays as it is


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
