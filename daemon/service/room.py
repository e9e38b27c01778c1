"""The room fills that have not started yet may take: queue slots and data bytes, per client and in all.

A fill takes its room with its header (a slot, and the data bytes it declares), keeps it while its data arrives
(daemon/service/uploads.py) and while it waits in the queue (daemon/service/jobs.py), and gives it back when the worker
takes it. One client may take at most half the slots and half the bytes, so a client that keeps the queue full (a
script sending many fills at once) always leaves room for another (the plug-in, a batch's one job per connection).
"""

from __future__ import annotations

from dataclasses import dataclass

from .protocol import ErrorCode, ProtocolError


@dataclass(frozen=True)
class Held:
    """What fills that have not started hold: how many, and their data bytes."""

    jobs: int = 0
    bytes: int = 0

    def __add__(self, other: Held) -> Held:
        return Held(self.jobs + other.jobs, self.bytes + other.bytes)


class Room:
    def __init__(self, slots: int, total_bytes: int) -> None:
        self.slots = slots
        self.client_slots = max(1, slots // 2)
        self.total_bytes = total_bytes
        self.client_bytes = total_bytes // 2

    def check(self, job_id: str, size: int, client: Held, everyone: Held) -> None:
        """ProtocolError(queue_full) when a fill of `size` data bytes does not fit beside what the client and
        everyone hold now; too_large when it never would (a waiting room smaller than the pixel limit allows)."""
        if size > self.client_bytes:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"this fill's data is {size_text(size)}; this daemon keeps at "
                                f"most {size_text(self.client_bytes)} per client for fills that wait to run", job_id)
        if client.jobs >= self.client_slots:
            self._full(job_id, f"this client already has {client.jobs} fills waiting or uploading, the most one "
                       f"client may have (half the daemon's {self.slots} queue slots, so that others find room): "
                       "send the next one when one of them has started")
        if client.bytes + size > self.client_bytes:
            self._full(job_id, f"this fill needs {size_text(size)} of room until it runs, and this client's fills "
                       f"waiting or uploading already hold {size_text(client.bytes)} of the "
                       f"{size_text(self.client_bytes)} one client may hold (half the daemon's "
                       f"{size_text(self.total_bytes)}): send it again when one of them has started")
        if everyone.jobs >= self.slots:
            self._full(job_id, f"the queue is full ({self.slots} fills waiting or uploading): try again when one "
                       "has started")
        if everyone.bytes + size > self.total_bytes:
            self._full(job_id, f"this fill needs {size_text(size)} of room until it runs, and the fills of all "
                       f"clients waiting or uploading hold {size_text(everyone.bytes)} of the daemon's "
                       f"{size_text(self.total_bytes)} in all: try again when some have started")

    @staticmethod
    def _full(job_id: str, why: str) -> None:
        raise ProtocolError(ErrorCode.QUEUE_FULL, why, job_id)


def largest_upload(max_pixels: int) -> int:
    """The data of the largest fill the daemon takes: 4 f32 channels, an f32 mask and an f32 source mask."""
    return max_pixels * (4 + 1 + 1) * 4


def size_text(size: int) -> str:
    """Bytes as people read them: 300 bytes, 16 KB, 3.5 MB, 2.2 GB (units of 1024)."""
    for unit, shift in (("GB", 30), ("MB", 20), ("KB", 10)):
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size} bytes"
