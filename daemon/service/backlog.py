"""Replies a client has not taken yet: one queue per client, in order, bounded in bytes (per client and in all) and
in time. The socket loop sends; this only holds, and says when a client has to be dropped."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

CLIENT_BYTES = 512 << 20  # a few full-size results
TOTAL_BYTES = 2 << 30
PATIENCE = 60.0  # seconds a client may leave its oldest reply unread


def frames_size(frames: list[Any]) -> int:
    return sum(len(frame) for frame in frames)  # bytes and zmq.Frame alike


@dataclass
class Waiting:
    replies: deque[list[Any]] = field(default_factory=deque)
    size: int = 0
    since: float = 0.0  # when the oldest reply was held


class Backlog:
    def __init__(self, client_bytes: int = CLIENT_BYTES, total_bytes: int = TOTAL_BYTES, patience: float = PATIENCE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client_bytes = client_bytes
        self.total_bytes = total_bytes
        self.patience = patience
        self.clock = clock
        self.size = 0
        self._waiting: dict[bytes, Waiting] = {}

    def holds(self, client: bytes) -> bool:
        return client in self._waiting

    def clients(self) -> Iterator[bytes]:
        return iter(list(self._waiting))

    def add(self, client: bytes, frames: list[Any]) -> bool:
        """Hold a reply behind the client's others; False when that puts it (or all) over the byte bounds."""
        waiting = self._waiting.get(client)
        if waiting is None:
            waiting = self._waiting[client] = Waiting(since=self.clock())
        size = frames_size(frames)
        waiting.replies.append(frames)
        waiting.size += size
        self.size += size
        return waiting.size <= self.client_bytes and self.size <= self.total_bytes

    def first(self, client: bytes) -> list[Any] | None:
        waiting = self._waiting.get(client)
        return waiting.replies[0] if waiting is not None else None

    def sent_first(self, client: bytes) -> None:
        """The oldest reply went out: the client reads, so its patience starts again."""
        waiting = self._waiting[client]
        size = frames_size(waiting.replies.popleft())
        waiting.size -= size
        self.size -= size
        if waiting.replies:
            waiting.since = self.clock()
        else:
            del self._waiting[client]

    def overdue(self, client: bytes) -> bool:
        waiting = self._waiting.get(client)
        return waiting is not None and self.clock() - waiting.since > self.patience

    def forget(self, client: bytes) -> tuple[int, int]:
        """Discard what the client has waiting: (replies, bytes)."""
        waiting = self._waiting.pop(client, None)
        if waiting is None:
            return 0, 0
        self.size -= waiting.size
        return len(waiting.replies), waiting.size
