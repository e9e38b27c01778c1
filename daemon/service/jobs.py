"""Fill jobs and the queue between the socket loop (which adds and removes jobs) and the compute worker (which takes
them one at a time). The socket loop lets a job in only when it has room (daemon/service/room.py)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from engine.options import FillOptions

from .room import Held


@dataclass(eq=False)  # compared by identity: two jobs with equal fields are still two jobs
class Job:
    client: bytes  # the ROUTER identity of the client that sent it
    job_id: str  # chosen by the client, unique among that client's live jobs
    image: np.ndarray
    mask: np.ndarray
    options: FillOptions
    source: np.ndarray | None = None  # where the fill may copy from (None: everywhere)
    cancel: threading.Event = field(default_factory=threading.Event)
    daemon_stopping: bool = False  # cancelled because the daemon stops, not at the client's request
    accepted_at: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> tuple[bytes, str]:
        return (self.client, self.job_id)

    @property
    def data_bytes(self) -> int:
        """What it holds while it waits: its arrays are views of the data it came with."""
        return self.image.nbytes + self.mask.nbytes + (self.source.nbytes if self.source is not None else 0)

    def describe(self) -> str:
        return f"job '{self.job_id}' of client {self.client.hex()[:10]}"


class JobQueue:
    """Waiting jobs, plus the one running; safe to use from both threads."""

    def __init__(self) -> None:
        self._waiting: deque[Job] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._running: Job | None = None

    def put(self, job: Job) -> int:
        """Queue `job` and return how many jobs are ahead of it (the running one included)."""
        with self._changed:
            self._waiting.append(job)
            self._changed.notify()
            return len(self._waiting) - 1 + (self._running is not None)

    def held(self, client: bytes | None = None) -> Held:
        """The waiting jobs of `client` (None: of everyone), and their data bytes."""
        with self._changed:
            sizes = [job.data_bytes for job in self._waiting if client is None or job.client == client]
        return Held(len(sizes), sum(sizes))

    def take(self) -> Job | None:
        """The next job, marked running (waits for one); None once the queue is closed."""
        with self._changed:
            while not self._waiting and not self._closed:
                self._changed.wait()
            if self._closed:
                return None
            self._running = self._waiting.popleft()
            return self._running

    def finished(self) -> None:
        with self._changed:
            self._running = None

    def remove(self, job: Job) -> bool:
        """Take `job` out if it is still waiting (True); False when it is running or already done."""
        with self._changed:
            if job in self._waiting:
                self._waiting.remove(job)
                return True
            return False

    def close(self) -> list[Job]:
        """Stop handing out jobs; returns those that were still waiting."""
        with self._changed:
            self._closed = True
            left = list(self._waiting)
            self._waiting.clear()
            self._changed.notify_all()
            return left

    @property
    def running(self) -> Job | None:
        with self._changed:
            return self._running

    def __len__(self) -> int:
        with self._changed:
            return len(self._waiting)
