"""The compute worker: one thread per device running the engine's fill on one job at a time.

ZeroMQ sockets are not thread-safe, so the worker never touches the daemon's ROUTER socket: it pushes every
message for a client (progress, then result, error or cancelled) over its own inproc PUSH socket, and the socket
loop forwards them. Each pushed message is [kind, client identity, job id, *protocol frames].
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import numpy as np
import zmq

from engine.errors import Cancelled, FillError
from engine.progress import Progress

from .jobs import Job, JobQueue
from .pixels import to_frame
from .protocol import ErrorCode, encode, error_reply

EVENT, FINAL = b"event", b"final"  # FINAL ends a job: the loop forgets it once forwarded
STOPPED_MESSAGE = "the daemon stopped before this job finished; start it again and send the job again"

log = logging.getLogger("neural_fill.daemon")

FillFunction = Callable[..., np.ndarray]


class Worker(threading.Thread):
    def __init__(self, context: zmq.Context, outbox: str, queue: JobQueue, fill: FillFunction,
                 preload: Callable[[], None] = lambda: None) -> None:
        """preload: loads the networks, on this thread before its first job; `loaded` is set when it has ended,
        and `load_error` holds what it raised (the worker then ends: see run)."""
        super().__init__(name="neural-fill-worker", daemon=True)
        self._context = context
        self._outbox_address = outbox
        self._queue = queue
        self._fill = fill
        self._preload = preload
        self.loaded = threading.Event()
        self.load_error: BaseException | None = None

    def run(self) -> None:
        # The networks load here, not on the main thread: every thread that runs torch's parallel passes gets an
        # OpenMP pool of its own, and with two pools on the cores libgomp throttles its threads' spinning, which
        # made every fill 1.5x slower (docs/benchmarks.md).
        try:
            self._preload()
        except BaseException as error:  # noqa: BLE001 - handed to the thread that started the daemon
            self.load_error = error
            return
        finally:
            self.loaded.set()
        outbox = self._context.socket(zmq.PUSH)
        outbox.linger = 0
        outbox.connect(self._outbox_address)
        try:
            while (job := self._queue.take()) is not None:
                try:
                    frames = self._run_job(job, outbox)
                finally:
                    self._queue.finished()
                outbox.send_multipart([FINAL, job.client, job.job_id.encode(), *frames], copy=False)
                del job, frames  # its data (as big as its upload) is freed now, not when the next job comes
        finally:
            outbox.close()

    def _run_job(self, job: Job, outbox: zmq.Socket) -> list[bytes]:
        """Runs the fill and returns the frames of its last message; every failure becomes that message."""
        started = time.monotonic()

        def progress(event: Progress) -> None:
            header = {"op": "progress", "id": job.job_id, **dataclasses.asdict(event)}
            outbox.send_multipart([EVENT, job.client, job.job_id.encode(), *encode(header)])

        try:
            if job.cancel.is_set():  # cancelled between the queue and here
                raise Cancelled("fill cancelled")
            result = self._fill(job.image, job.mask, job.options, progress=progress, cancel=job.cancel.is_set,
                                source=job.source)
            frame = to_frame(result)
        except Cancelled:
            log.info("%s: cancelled after %.1f s", job.describe(), time.monotonic() - started)
            if job.daemon_stopping:
                return error_reply(ErrorCode.STOPPED, STOPPED_MESSAGE, job.job_id)
            return encode({"op": "cancelled", "id": job.job_id})
        except FillError as error:
            log.info("%s: failed (%s): %s", job.describe(), ErrorCode.BAD_INPUT, error)
            return error_reply(ErrorCode.BAD_INPUT, str(error), job.job_id)
        except Exception as error:  # MemoryError and CUDA out-of-memory included: the job fails, the daemon goes on
            log.exception("%s: failed (%s)", job.describe(), ErrorCode.INTERNAL)
            message = f"the fill failed inside the daemon ({type(error).__name__}): {error}"
            return error_reply(ErrorCode.INTERNAL, message, job.job_id)
        log.info("%s: done in %.1f s", job.describe(), time.monotonic() - started)
        header = {"op": "result", "id": job.job_id, "width": frame.width, "height": frame.height,
                  "channels": frame.channels, "sample": frame.sample}
        return encode(header, frame.data)
