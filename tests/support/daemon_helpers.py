"""What the daemon's tests share: the gating on the real VGG-19 weights, the fast and slow options, a daemon in a
thread, free ports, small photos, valid requests."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np

from daemon.service.protocol import (
    CHUNK_BYTES,
    PROTOCOL_VERSION,
    REQUEST_FRAMES,
    ErrorCode,
    ProtocolError,
    decode,
    job_id_of,
    parse_fill,
)
from daemon.service.server import Daemon
from engine.options import get_preset
from tests.support.images import centre_mask, noisy_photo

REPO = Path(__file__).resolve().parents[2]
# A fixed thread count: the default follows the machine's load at each fill, and the sums of a different count
# differ in the last bit, so the in-process fill a test compares with would depend on what else runs.
FAST = get_preset("preview", working_size=64, threads=2)
SLOW = get_preset("preview", working_size=64, scales=1, iterations=[1000],  # a minute or more: only to cancel
                  completion=False)  # L-BFGS, not the completion, which would not use the iterations
MAX_PIXELS = 1_000_000
ERROR_CODES = {value for name, value in vars(ErrorCode).items() if name.isupper()}


def start_daemon(endpoint: str, **settings) -> tuple[Daemon, threading.Thread]:
    daemon = Daemon(endpoint, **{"max_pixels": MAX_PIXELS, **settings})
    daemon.start()
    thread = threading.Thread(target=daemon.run, name="test-daemon", daemon=True)
    thread.start()
    return daemon, thread


def resident_bytes(pid: int | str = "self") -> int:
    """A process's resident memory (Linux /proc): the daemon's, when it runs in this process."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def photo_and_hole(seed: int = 0, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    return noisy_photo(size, size, seed=seed), centre_mask(size, size, size // 4)


def is_valid_request(frames: list[bytes]) -> bool:
    """What the daemon would take without a refusal: the fuzz tests want refusals only. (A well-formed chunk for
    no upload is ignored without a reply.)"""
    try:
        message = decode(frames)
        if message.op == "fill":
            parse_fill(message, MAX_PIXELS)
        elif message.op == "data":
            job_id_of(message.header)
    except ProtocolError:
        return False
    return message.op in REQUEST_FRAMES and message.op != "cancel"  # this client has no job to cancel


VALID_FILL = {"v": PROTOCOL_VERSION, "op": "fill", "id": "f", "width": 16, "height": 16, "channels": 3,
              "sample": "u8", "mask_sample": "u8", "preset": "preview", "options": {}}


def several_chunks() -> tuple[np.ndarray, np.ndarray]:
    """A float RGBA image of three full chunks, and its hole."""
    image = noisy_photo(384, 512, seed=12)
    image = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]).astype(np.float32) / 255
    assert image.nbytes == 3 * CHUNK_BYTES
    return image, centre_mask(384, 512, 48)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
