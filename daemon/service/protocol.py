"""The Neural Fill wire protocol: the one definition of every message (docs/protocol.md describes it for other
languages).

A message is a ZeroMQ multipart message: frame 0 is a msgpack map (the header), any further frames are raw bytes.
A `fill` declares its image in its header; its pixels and mask (and a source mask, feature "source") follow in
`data` messages of at most CHUNK_BYTES, so
the daemon's per-frame limit is small whatever the image, and a header takes the room its data will need before any
comes (daemon/service/room.py). Clients use a DEALER socket, the daemon a ROUTER. Every header carries `v`
(the protocol version) and `op`. Standard library and msgpack only: the GIMP plug-in imports this module inside
GIMP's own Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

PROTOCOL_VERSION = 2  # 2: pixels and mask in `data` chunks after the `fill` header
# What this daemon takes beyond version 2's first form, named in `hello`: a client sends them only when named.
FEATURES = ("source",)  # source: a `fill` may carry a source mask (where the fill may copy from) after its mask

# Requests a client may send, and the extra frames each carries.
REQUEST_FRAMES = {"hello": 0, "ping": 0, "fill": 0, "data": 1, "cancel": 0, "status": 0, "shutdown": 0}
# Replies and events the daemon sends.
REPLIES = ("hello", "pong", "accepted", "progress", "result", "error", "cancelled", "status", "bye")

SAMPLE_BYTES = {"u8": 1, "u16": 2, "f32": 4}
MAX_JOB_ID = 64
MAX_HEADER_BYTES = 64 * 1024
CHUNK_BYTES = 1 << 20  # the largest data frame: what an unauthenticated or stalled peer can make libzmq hold


class ErrorCode:
    """Stable error codes: clients branch on these, people read the message beside them."""

    BAD_MESSAGE = "bad_message"  # not msgpack, not a map, wrong frame count
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_OP = "unknown_op"
    BAD_FIELD = "bad_field"  # a field missing, of the wrong type or out of range
    SIZE_MISMATCH = "size_mismatch"  # more data than the fill declared, or a chunk over CHUNK_BYTES
    TOO_LARGE = "too_large"  # more pixels than the daemon's limit, or more data than a client may have waiting
    QUEUE_FULL = "queue_full"  # no room for the fill now (daemon/service/room.py): try again when one has started
    STALLED = "stalled"  # a fill's data came too slowly (daemon/service/uploads.py): the upload is dropped
    DUPLICATE_JOB = "duplicate_job"
    NOT_FOUND = "not_found"  # cancel of a job this client does not have
    BAD_INPUT = "bad_input"  # the engine refused the image, mask or options (its message says why)
    UNAUTHORISED = "unauthorised"
    INTERNAL = "internal"  # the job failed inside the daemon; the daemon goes on
    STOPPED = "stopped"  # the daemon stopped (SIGTERM, Ctrl-C, shutdown) before the job finished


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.job_id = job_id


@dataclass
class Message:
    header: dict[str, Any]
    blobs: list[bytes] = field(default_factory=list)

    @property
    def op(self) -> str:
        return self.header["op"]


def encode(header: dict[str, Any], *blobs: bytes) -> list[bytes]:
    """Header (the version is added) and raw frames -> the multipart frames to send."""
    return [msgpack.packb({"v": PROTOCOL_VERSION, **header}, use_bin_type=True), *blobs]


def decode(frames: list[bytes]) -> Message:
    """Frames -> Message, checking only the envelope (map, version, op, frame count); ProtocolError otherwise."""
    if not frames:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "empty message")
    if len(frames[0]) > MAX_HEADER_BYTES:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"header larger than {MAX_HEADER_BYTES} bytes")
    try:
        header = msgpack.unpackb(frames[0], raw=False, strict_map_key=True, max_bin_len=0,
                                 max_array_len=1024, max_map_len=256)
    except msgpack.StackError:  # its message is empty
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "header is nested too deeply") from None
    except Exception as error:  # msgpack raises several types for malformed input
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"header is not valid msgpack: {error}") from None
    if not isinstance(header, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "header must be a msgpack map")
    job_id = header.get("id") if isinstance(header.get("id"), str) else None
    version = header.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:  # True == 1 in Python: a bool is no version
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"protocol version {header.get('v')!r} is not supported (this side speaks "
                            f"{PROTOCOL_VERSION})", job_id)
    op = header.get("op")
    if not isinstance(op, str) or (op not in REQUEST_FRAMES and op not in REPLIES):
        raise ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown operation {op!r}", job_id)
    expected = REQUEST_FRAMES.get(op)
    if expected is not None and len(frames) - 1 != expected:
        raise ProtocolError(ErrorCode.BAD_MESSAGE,
                            f"'{op}' carries {expected} data frame(s), not {len(frames) - 1}", job_id)
    return Message(header, list(frames[1:]))


def field_of(header: dict[str, Any], name: str, kind: type | tuple[type, ...], job_id: str | None = None) -> Any:
    """A required header field of the given type, or ProtocolError(bad_field) naming it."""
    if name not in header:
        raise ProtocolError(ErrorCode.BAD_FIELD, f"field '{name}' is missing", job_id)
    value = header[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(ErrorCode.BAD_FIELD, f"field '{name}' has the wrong type ({type(value).__name__})",
                            job_id)
    return value


@dataclass(frozen=True)
class FillRequest:
    """A checked `fill` header: sizes within the daemon's pixel limit. Its pixels and mask arrive in `data` chunks
    (daemon/service/uploads.py), then sit here as views of the upload's buffer."""

    job_id: str
    width: int
    height: int
    channels: int
    sample: str
    mask_sample: str
    preset: str
    options: dict[str, Any]
    source_sample: str | None = None  # a source mask follows the mask (feature "source"), or none
    pixels: bytes | memoryview = b""
    mask: bytes | memoryview = b""
    source: bytes | memoryview = b""

    @property
    def pixel_bytes(self) -> int:
        return self.width * self.height * self.channels * SAMPLE_BYTES[self.sample]

    @property
    def mask_bytes(self) -> int:
        return self.width * self.height * SAMPLE_BYTES[self.mask_sample]

    @property
    def source_bytes(self) -> int:
        return self.width * self.height * SAMPLE_BYTES[self.source_sample] if self.source_sample else 0

    @property
    def data_bytes(self) -> int:
        """The bytes the `data` chunks carry: the pixels, the mask, then the source mask when there is one."""
        return self.pixel_bytes + self.mask_bytes + self.source_bytes


def parse_fill(message: Message, max_pixels: int) -> FillRequest:
    header = message.header
    job_id = job_id_of(header)
    width = field_of(header, "width", int, job_id)
    height = field_of(header, "height", int, job_id)
    channels = field_of(header, "channels", int, job_id)
    sample = field_of(header, "sample", str, job_id)
    mask_sample = header.get("mask_sample", "u8")
    source_sample = header.get("source_sample")
    preset = header.get("preset", "default")
    options = header.get("options", {})
    if width < 1 or height < 1:
        raise ProtocolError(ErrorCode.BAD_FIELD, f"image size {width}x{height} is not positive", job_id)
    if width * height > max_pixels:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{width}x{height} is {width * height} pixels; this daemon "
                            f"takes at most {max_pixels}", job_id)
    if channels not in (1, 2, 3, 4):
        raise ProtocolError(ErrorCode.BAD_FIELD, f"channels must be 1 to 4, not {channels}", job_id)
    samples = [("sample", sample), ("mask_sample", mask_sample)]
    for name, value in samples + ([("source_sample", source_sample)] if source_sample is not None else []):
        if not isinstance(value, str) or value not in SAMPLE_BYTES:  # a list or map here is unhashable
            raise ProtocolError(ErrorCode.BAD_FIELD, f"{name} must be one of {', '.join(SAMPLE_BYTES)}, "
                                f"not {value!r}", job_id)
    if not isinstance(preset, str):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'preset' must be text", job_id)
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'options' must be a map of option names", job_id)
    return FillRequest(job_id, width, height, channels, sample, mask_sample, preset, options, source_sample)


def job_id_of(header: dict[str, Any]) -> str:
    job_id = field_of(header, "id", str)
    if not 0 < len(job_id) <= MAX_JOB_ID:
        raise ProtocolError(ErrorCode.BAD_FIELD, f"field 'id' must be 1 to {MAX_JOB_ID} characters")
    return job_id


def fill_request(job_id: str, width: int, height: int, channels: int, sample: str, pixels: bytes | memoryview,
                 mask: bytes | memoryview, mask_sample: str = "u8", preset: str = "default",
                 options: dict[str, Any] | None = None, source: bytes | memoryview | None = None,
                 source_sample: str = "u8") -> list[list[Any]]:
    """The messages of a `fill` (what a client sends, in order): the header, then the pixels, the mask and the
    source mask when given (feature "source"), one after the other, in `data` chunks of at most CHUNK_BYTES (views
    of the caller's buffers, not copies)."""
    header = {"op": "fill", "id": job_id, "width": width, "height": height, "channels": channels,
              "sample": sample, "mask_sample": mask_sample, "preset": preset, "options": options or {}}
    blocks = [pixels, mask]
    if source is not None:
        header["source_sample"] = source_sample
        blocks.append(source)
    data_header = encode({"op": "data", "id": job_id})[0]
    chunks = [[data_header, view[start:start + CHUNK_BYTES]]
              for view in (memoryview(block).cast("B") for block in blocks)
              for start in range(0, len(view), CHUNK_BYTES)]
    return [encode(header), *chunks]


def error_reply(code: str, message: str, job_id: str | None = None) -> list[bytes]:
    header: dict[str, Any] = {"op": "error", "code": code, "message": message}
    if job_id is not None:
        header["id"] = job_id
    return encode(header)
