"""Fills whose data is still arriving: the bytes each `fill` header declared are reserved against a budget per
client and in all before a chunk is taken, so what unfinished uploads hold is bounded by what the daemon agreed to.
The socket loop feeds the chunks; this only counts, and says when an upload is complete, refused or stalled."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .protocol import CHUNK_BYTES, ErrorCode, FillRequest, ProtocolError

PATIENCE = 30.0  # seconds an upload may wait for its next chunk


@dataclass
class Upload:
    client: bytes
    request: FillRequest  # once complete, with its pixels, mask and source mask as views of `buffer`
    options: Any  # what the job will run with, resolved from the header
    buffer: bytearray
    received: int = 0
    last: float = 0.0  # when its last chunk (or its header) came


class Uploads:
    def __init__(self, client_bytes: int, total_bytes: int, patience: float = PATIENCE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client_bytes = client_bytes
        self.total_bytes = total_bytes
        self.patience = patience
        self.clock = clock
        self.size = 0  # bytes reserved by all uploads
        self._uploads: dict[tuple[bytes, str], Upload] = {}

    def __contains__(self, key: tuple[bytes, str]) -> bool:
        return key in self._uploads

    def __len__(self) -> int:
        return len(self._uploads)

    def start(self, client: bytes, request: FillRequest, options: Any) -> None:
        """Reserve the request's data bytes, or ProtocolError(queue_full) when that would pass a budget."""
        size = request.data_bytes
        held = sum(u.request.data_bytes for u in self._uploads.values() if u.client == client)
        if held + size > self.client_bytes or self.size + size > self.total_bytes:
            raise ProtocolError(ErrorCode.QUEUE_FULL, f"this fill needs {mb(size)} of upload room and the daemon "
                                f"has {mb(min(self.client_bytes - held, self.total_bytes - self.size))} free "
                                f"(at most {mb(self.client_bytes)} per client, {mb(self.total_bytes)} in all): "
                                "try again when the uploads in flight have arrived", request.job_id)
        # bytearray() is calloc'd: pages are committed only as chunks fill them.
        self._uploads[(client, request.job_id)] = Upload(client, request, options, bytearray(size),
                                                            last=self.clock())
        self.size += size

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
        upload.received, upload.last = end, self.clock()
        if end < len(upload.buffer):
            return None
        self.forget(client, job_id)
        data = memoryview(upload.buffer)
        split = upload.request.pixel_bytes
        end = split + upload.request.mask_bytes
        upload.request = replace(upload.request, pixels=data[:split], mask=data[split:end], source=data[end:])
        return upload

    def forget(self, client: bytes, job_id: str) -> bool:
        upload = self._uploads.pop((client, job_id), None)
        if upload is not None:
            self.size -= len(upload.buffer)
        return upload is not None

    def forget_client(self, client: bytes) -> None:
        for key in [key for key in self._uploads if key[0] == client]:
            self.forget(*key)

    def stalled(self) -> list[tuple[bytes, str]]:
        """Uploads whose next chunk is overdue, forgotten here: the caller tells their clients."""
        now = self.clock()
        late = [key for key, upload in self._uploads.items() if now - upload.last > self.patience]
        for key in late:
            self.forget(*key)
        return late


def mb(size: int) -> str:
    return f"{size / 2**20:.0f} MB"


def largest_upload(max_pixels: int) -> int:
    """The data of the largest fill the daemon takes: 4 f32 channels, an f32 mask and an f32 source mask."""
    return max_pixels * (4 + 1 + 1) * 4
