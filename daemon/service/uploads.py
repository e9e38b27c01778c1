"""Fills whose data is still arriving. Each gets an anonymous memory map of the size its header declared: the kernel
gives it pages only as chunks are written, so an upload holds what has arrived, not what was declared (a bytearray
is zero-filled at once: docs/security.md). An upload has PATIENCE seconds from its header plus the time its data
needs at MIN_RATE, however its chunks are spaced (empty ones buy nothing).
The socket loop feeds the chunks (daemon/service/room.py decides whether a header gets room); this only counts, and
says when an upload is complete, refused or stalled."""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .protocol import CHUNK_BYTES, ErrorCode, FillRequest, ProtocolError
from .room import Held, size_text

PATIENCE = 30.0  # seconds an upload may take beyond what its data needs at MIN_RATE
# Bytes per second every upload must average: 8 Mbit/s, a tenth of 100 Mbit Ethernet; ipc:// and loopback (CURVE
# included) carry hundreds of MB/s. The largest fill at the default limits (2.2 GB) may take 38 minutes.
MIN_RATE = 1 << 20
# Private pages (the default, MAP_SHARED, would put them in shared memory); Windows has no flags.
PRIVATE = {"flags": mmap.MAP_PRIVATE} if hasattr(mmap, "MAP_PRIVATE") else {}


@dataclass
class Upload:
    client: bytes
    request: FillRequest  # once complete, with its pixels, mask and source mask as views of `buffer`
    options: Any  # what the job will run with, resolved from the header
    buffer: mmap.mmap  # unmapped once nothing views it (the job's arrays are views)
    started: float  # when its header came
    received: int = 0


class Uploads:
    def __init__(self, patience: float = PATIENCE, min_rate: float = MIN_RATE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.patience = patience
        self.min_rate = min_rate
        self.clock = clock
        self._uploads: dict[tuple[bytes, str], Upload] = {}

    def __contains__(self, key: tuple[bytes, str]) -> bool:
        return key in self._uploads

    def __len__(self) -> int:
        return len(self._uploads)

    def held(self, client: bytes | None = None) -> Held:
        """The uploads of `client` (None: of everyone), and the bytes their headers declared."""
        sizes = [len(u.buffer) for u in self._uploads.values() if client is None or u.client == client]
        return Held(len(sizes), sum(sizes))

    def start(self, client: bytes, request: FillRequest, options: Any) -> None:
        buffer = mmap.mmap(-1, request.data_bytes, **PRIVATE)
        self._uploads[(client, request.job_id)] = Upload(client, request, options, buffer, self.clock())

    def add(self, client: bytes, job_id: str, chunk: memoryview | bytes) -> Upload | None:
        """Append a chunk; the upload once all has come (its request then holds its pixels and masks), else None.
        A chunk for no upload of this client is ignored (its fill was refused or cancelled, and that reply said so)."""
        upload = self._uploads.get((client, job_id))
        if upload is None:
            return None
        end = upload.received + len(chunk)
        if len(chunk) > CHUNK_BYTES or end > len(upload.buffer):
            self.forget(client, job_id)
            raise ProtocolError(ErrorCode.SIZE_MISMATCH, f"data beyond the {len(upload.buffer)} bytes the fill "
                                f"declared (or a chunk over {CHUNK_BYTES} bytes): upload dropped", job_id)
        upload.buffer[upload.received:end] = chunk
        upload.received = end
        if end < len(upload.buffer):
            return None
        self.forget(client, job_id)
        data = memoryview(upload.buffer)
        split = upload.request.pixel_bytes
        end = split + upload.request.mask_bytes
        upload.request = replace(upload.request, pixels=data[:split], mask=data[split:end], source=data[end:])
        return upload

    def forget(self, client: bytes, job_id: str) -> bool:
        return self._uploads.pop((client, job_id), None) is not None

    def forget_client(self, client: bytes) -> None:
        for key in [key for key in self._uploads if key[0] == client]:
            self.forget(*key)

    def stalled(self) -> list[tuple[bytes, str]]:
        """Uploads past their deadline, forgotten here: the caller tells their clients (too_slow says why)."""
        now = self.clock()
        late = [key for key, u in self._uploads.items() if now - u.started > self.patience + u.received / self.min_rate]
        for key in late:
            self.forget(*key)
        return late

    @property
    def too_slow(self) -> str:
        return (f"the fill's data came too slowly (an upload has {self.patience:g} s from its header, plus 1 s per "
                f"{size_text(round(self.min_rate))} it carries): upload dropped")

    def close(self) -> list[tuple[bytes, str]]:
        """Forget every upload (the daemon stops); returns them, for the caller to tell their clients."""
        keys = list(self._uploads)
        self._uploads.clear()
        return keys
