"""A small synchronous client of the Neural Fill daemon (used by the CLI, batch scripts and the tests)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import Cancelled, MaskError
from engine.options import FillOptions
from engine.progress import CancelCheck, Progress, ProgressCallback

from .endpoints import default_endpoint, uses_curve
from .keys import curve_keys, default_keys_dir
from .link import Closing, DaemonError, DaemonUnavailable, JobCancelled, Link
from .pixels import from_bytes, mask_to_frame, to_frame
from .protocol import ErrorCode, fill_request

PROGRESS_FIELDS = ("stage", "fraction", "region", "regions", "scale", "scales", "iteration", "iterations")

__all__ = ["Client", "DaemonError", "DaemonUnavailable"]


class Client(Closing):
    """One DEALER connection to a daemon, speaking numpy arrays. Not thread-safe: give each thread its own Client.

    endpoint None is the default (daemon/service/endpoints.py). CURVE is spoken on every tcp:// endpoint unless
    insecure_loopback, or as `curve` says, or when a keys_dir is given: the daemon's public key and this client's
    pair are read from the keys dir (default: the user's config dir, as the daemon's). A daemon that refuses the
    key, or speaks CURVE when this client does not (or the reverse), never answers: the calls then raise
    HandshakeRefused, a DaemonUnavailable, after `timeout`. An ipc:// socket another user could be behind is
    refused here, before anything is sent (UnsafeSocket, a DaemonUnavailable too)."""

    def __init__(self, endpoint: str | None = None, timeout: float = 10.0, curve: bool | None = None,
                 keys_dir: Path | str | None = None, insecure_loopback: bool = False) -> None:
        endpoint = endpoint or default_endpoint()
        self.endpoint = endpoint
        self.timeout = timeout
        keys = None
        if uses_curve(endpoint, curve, insecure_loopback) or keys_dir is not None:
            keys = curve_keys(Path(keys_dir) if keys_dir is not None else default_keys_dir())
        self._link = Link(endpoint, timeout, keys)

    def close(self) -> None:
        self._link.close()

    # --------------------------------------------------------------------------------------- simple requests

    def hello(self, timeout: float | None = None) -> dict[str, Any]:
        """The daemon's hello (protocol, version, device, precision, limits); timeout None: the client's."""
        return self._link.call({"op": "hello"}, "hello", timeout).header

    def ping(self) -> float:
        """Round-trip time in seconds."""
        started = time.monotonic()
        self._link.call({"op": "ping"}, "pong")
        return time.monotonic() - started

    def status(self) -> dict[str, Any]:
        return self._link.call({"op": "status"}, "status").header

    def shutdown(self) -> None:
        self._link.call({"op": "shutdown"}, "bye")

    # ------------------------------------------------------------------------------------------------- fill

    def fill(self, image: np.ndarray, mask: np.ndarray, preset: str = "default",
             options: FillOptions | dict[str, Any] | None = None, progress: ProgressCallback | None = None,
             cancel: CancelCheck | None = None, source: np.ndarray | None = None) -> np.ndarray:
        """Fill on the daemon: the same contract as engine.fill, with DaemonError for what the daemon refuses.

        options: a FillOptions (sent whole, the device left to the daemon) or a map of overrides of `preset`.
        source: where the fill may copy from, as engine.fill takes it (a daemon that names the feature "source")."""
        image = np.asarray(image)
        pixels, holes = to_frame(image), mask_to_frame(mask)
        allowed = None if source is None else mask_to_frame(source)
        for name, area in (("mask", holes), ("source mask", allowed)):
            if area is not None and (area.width, area.height) != (pixels.width, pixels.height):
                raise MaskError(f"the {name} is {area.width}x{area.height} but the image is {pixels.width}x"
                                f"{pixels.height}: they must be the same size")
        if source is not None and "source" not in self.hello().get("features", ()):
            raise DaemonError(ErrorCode.BAD_INPUT, "this daemon is too old for a source mask: update it")
        if isinstance(options, FillOptions):
            options = {k: v for k, v in options.to_dict().items() if k != "device"}
        job_id = uuid.uuid4().hex[:16]
        self._link.upload(job_id, fill_request(job_id, pixels.width, pixels.height, pixels.channels,
                                               pixels.sample, pixels.data, holes.data, mask_sample=holes.sample,
                                               preset=preset, options=options,
                                               source=None if allowed is None else allowed.data,
                                               source_sample="u8" if allowed is None else allowed.sample))

        def on_progress(header: dict[str, Any]) -> None:
            progress(Progress(**{k: header[k] for k in PROGRESS_FIELDS if k in header}))

        try:
            result = self._link.follow(job_id, on_progress if progress is not None else None, cancel)
        except JobCancelled as cancelled:
            raise Cancelled(str(cancelled)) from None
        return from_bytes(result.blobs[0], result.header["height"], result.header["width"],
                          result.header["channels"], result.header["sample"]).reshape(image.shape)
