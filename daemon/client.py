"""A small synchronous client of the Neural Fill daemon (used by the CLI, batch scripts and the tests)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from engine.errors import Cancelled, MaskError
from engine.options import FillOptions
from engine.progress import CancelCheck, Progress, ProgressCallback

from .endpoints import DEFAULT_ENDPOINT
from .keys import CLIENT, SERVER, default_keys_dir, load_pair, load_public
from .pixels import from_bytes, mask_to_frame, to_frame
from .protocol import ErrorCode, Message, ProtocolError, decode, encode, fill_request

POLL_SECONDS = 0.1  # how often a waiting fill looks at its cancel check
PROGRESS_FIELDS = ("stage", "fraction", "region", "regions", "scale", "scales", "iteration", "iterations")


class DaemonError(Exception):
    """The daemon refused or failed a request; `code` is one of protocol.ErrorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class DaemonUnavailable(ConnectionError):  # noqa: N818 - reads better at the raise site than ...Error
    """No answer from the daemon within the timeout."""


class Client:
    """One DEALER connection to a daemon. Not thread-safe: give each thread its own Client.

    curve=True (or a keys_dir) speaks CURVE: the daemon's public key and this client's pair are read from the keys
    dir (default: the user's config dir, as the daemon's). A daemon that refuses the key never answers: the calls
    then raise DaemonUnavailable after `timeout`."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout: float = 10.0, curve: bool = False,
                 keys_dir: Path | str | None = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._socket = zmq.Context.instance().socket(zmq.DEALER)
        self._socket.linger = 0
        if curve or keys_dir is not None:
            try:
                self._use_curve(Path(keys_dir) if keys_dir is not None else default_keys_dir())
            except Exception:
                self._socket.close()
                raise
        self._socket.connect(endpoint)

    def _use_curve(self, keys_dir: Path) -> None:
        own = load_pair(keys_dir, CLIENT)
        self._socket.curve_serverkey = load_public(keys_dir, SERVER)
        self._socket.curve_publickey = own.public
        self._socket.curve_secretkey = own.secret

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------------------------------- simple requests

    def hello(self) -> dict[str, Any]:
        return self._call({"op": "hello"}, "hello").header

    def ping(self) -> float:
        """Round-trip time in seconds."""
        started = time.monotonic()
        self._call({"op": "ping"}, "pong")
        return time.monotonic() - started

    def status(self) -> dict[str, Any]:
        return self._call({"op": "status"}, "status").header

    def shutdown(self) -> None:
        self._call({"op": "shutdown"}, "bye")

    def _call(self, header: dict[str, Any], reply_op: str) -> Message:
        self._send(encode(header))
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self._receive(left)
            if message is None:
                break
            if message.op == reply_op:
                return message
            if message.op == "error" and "id" not in message.header:
                raise DaemonError(message.header.get("code", ErrorCode.INTERNAL), message.header.get("message", ""))
            # Anything else is left over from an earlier job (a late progress event): not ours now.
        raise self._unavailable()

    # ------------------------------------------------------------------------------------------------- fill

    def fill(self, image: np.ndarray, mask: np.ndarray, preset: str = "default",
             options: FillOptions | dict[str, Any] | None = None, progress: ProgressCallback | None = None,
             cancel: CancelCheck | None = None) -> np.ndarray:
        """Fill on the daemon: the same contract as engine.fill, with DaemonError for what the daemon refuses.

        options: a FillOptions (sent whole, the device left to the daemon) or a map of overrides of `preset`."""
        image = np.asarray(image)
        pixels, holes = to_frame(image), mask_to_frame(mask)
        if (holes.width, holes.height) != (pixels.width, pixels.height):
            raise MaskError(f"the mask is {holes.width}x{holes.height} but the image is {pixels.width}x"
                            f"{pixels.height}: they must be the same size")
        if isinstance(options, FillOptions):
            options = {k: v for k, v in options.to_dict().items() if k != "device"}
        job_id = uuid.uuid4().hex[:16]
        self._send(fill_request(job_id, pixels.width, pixels.height, pixels.channels, pixels.sample, pixels.data,
                                holes.data, mask_sample=holes.sample, preset=preset, options=options))
        result = self._follow(job_id, progress, cancel)
        return from_bytes(result.blobs[0], result.header["height"], result.header["width"],
                          result.header["channels"], result.header["sample"]).reshape(image.shape)

    def _follow(self, job_id: str, progress: ProgressCallback | None, cancel: CancelCheck | None) -> Message:
        """Waits for the job's result, passing progress on and cancel up. A job may wait in the queue for long
        without a word, so after half the timeout of silence a ping asks whether the daemon is still there; with
        no answer by the full timeout it is taken as gone (killed, machine down)."""
        accepted = cancel_sent = pinged = False
        last_heard = time.monotonic()
        while True:
            if cancel is not None and not cancel_sent and cancel():
                self._send(encode({"op": "cancel", "id": job_id}))
                cancel_sent = True
            message = self._receive(POLL_SECONDS)
            if message is None:
                quiet = time.monotonic() - last_heard
                if quiet > self.timeout:
                    raise self._unavailable()
                if accepted and not pinged and quiet > self.timeout / 2:
                    self._send(encode({"op": "ping"}))
                    pinged = True
                continue
            last_heard, pinged = time.monotonic(), False
            if message.header.get("id", job_id) != job_id:
                continue  # left over from an earlier job
            op = message.op
            if op == "accepted":
                accepted = True
            elif op == "progress" and progress is not None:
                progress(Progress(**{k: message.header[k] for k in PROGRESS_FIELDS if k in message.header}))
            elif op == "cancelled" or (cancel_sent and op in ("result", "error")):
                # Once cancel is asked for, a result that crossed it on the wire is dropped all the same.
                raise Cancelled("fill cancelled")
            elif op == "result":
                return message
            elif op == "error":
                raise DaemonError(message.header.get("code", ErrorCode.INTERNAL), message.header.get("message", ""))

    # ------------------------------------------------------------------------------------------------ frames

    def _send(self, frames: list[bytes]) -> None:
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            raise self._unavailable() from None

    def _receive(self, timeout: float) -> Message | None:
        if not self._socket.poll(int(timeout * 1000)):
            return None
        header, *data = self._socket.recv_multipart(copy=False)
        try:
            # The result's pixels are read straight from ZeroMQ's buffer (from_bytes makes the one copy).
            return decode([header.bytes, *(part.buffer for part in data)])
        except ProtocolError as error:
            raise DaemonError(error.code, f"the daemon sent a malformed message: {error.message}") from None

    def _unavailable(self) -> DaemonUnavailable:
        return DaemonUnavailable(f"no answer from the Neural Fill daemon at {self.endpoint} within "
                                 f"{self.timeout:g} s: is it running? Start it with `neural-fill daemon`")
