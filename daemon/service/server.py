"""The Neural Fill daemon: a ROUTER socket, networks loaded once, a bounded job queue and one compute worker.

The socket loop (the thread that calls `run`) owns the ROUTER socket and all bookkeeping; it only decodes, checks,
queues and forwards, so it answers within milliseconds even while the worker is deep in a fill. Nothing a client
sends can stop it: every malformed or refused request gets an error reply with a stable code. (A frame over
ZMQ_MAXMSGSIZE is the one exception: libzmq drops that connection before the daemon sees anything to answer.)
A fill's data comes in chunks (daemon/service/protocol.py), so that limit is one chunk whatever the image; its header
takes room (slots and bytes, per client and in all: daemon/service/room.py) that it keeps until the worker takes it.

With CURVE on (the default on tcp://, daemon/service/endpoints.py), zmq.auth's authenticator (ZAP) lets in only clients
whose public key is in the keys dir's `clients/` folder; anyone else's handshake fails and they never reach the
socket loop, nor libzmq's routing-id bookkeeping (docs/security.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from daemon.version import package_version
from engine.options import PRESETS, get_preset

from .backlog import CLIENT_BYTES, PATIENCE, TOTAL_BYTES, Backlog
from .endpoints import (
    DaemonConfigError,
    check_endpoint,
    default_endpoint,
    ipc_path,
    is_tcp,
    make_socket_dir,
    uses_curve,
)
from .jobs import Job, JobQueue
from .keys import SERVER, KeyPair, ensure_keys, load_pair
from .locks import claim_socket, release_socket
from .pixels import request_image, request_mask, request_source
from .protocol import (
    CHUNK_BYTES,
    FEATURES,
    MAX_HEADER_BYTES,
    PROTOCOL_VERSION,
    ErrorCode,
    FillRequest,
    Message,
    ProtocolError,
    decode,
    encode,
    error_reply,
    job_id_of,
    parse_fill,
)
from .room import Room, largest_upload, size_text
from .sockets import bind_router, raise_open_file_limit, router_socket, start_curve, user_id
from .uploads import PATIENCE as UPLOAD_PATIENCE
from .uploads import Uploads
from .worker import EVENT, FINAL, STOPPED_MESSAGE, Worker

DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_QUEUE = 16
POLL_MS = 100  # how soon a stop request (signal, shutdown) is noticed when no message arrives
BATCH = 64  # messages handled from one socket before looking at the other, so neither starves

log = logging.getLogger("neural_fill.daemon")


class Daemon:
    """`start()` loads the networks and binds; `run()` serves until `stop()` (safe from any thread or a signal
    handler) or an authorised shutdown."""

    def __init__(self, endpoint: str | None = None, device: str = "auto", max_queue: int = DEFAULT_MAX_QUEUE,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_message_bytes: int | None = None,
                 allow_shutdown: bool = False, curve: bool | None = None, keys_dir: Path | None = None,
                 insecure_loopback: bool = False, unread_bytes: int = CLIENT_BYTES,
                 unread_seconds: float = PATIENCE, waiting_bytes: int | None = None,
                 upload_seconds: float = UPLOAD_PATIENCE) -> None:
        """endpoint None: the default (daemon/service/endpoints.py). curve None: on for tcp:// unless insecure_loopback.
        A client holding more than unread_bytes of replies, or leaving one unread unread_seconds, is dropped.
        Fills not started (uploading or queued) may hold waiting_bytes in all (default: twice the largest fill), a
        client half that and half the slots; an upload has upload_seconds plus its data's time at uploads.MIN_RATE."""
        endpoint = endpoint or default_endpoint()
        make_socket_dir(endpoint)
        curve = uses_curve(endpoint, curve, insecure_loopback)
        check_endpoint(endpoint, curve, insecure_loopback)
        if max_queue < 1 or max_pixels < 1:
            raise DaemonConfigError("max_queue and max_pixels must be at least 1")
        self.endpoint = endpoint
        self.device_name = device
        self.max_queue = max_queue
        self.max_pixels = max_pixels
        # A chunk, plus room for what CURVE adds to a frame (libzmq applies the limit to the encrypted frame).
        self.max_message_bytes = max_message_bytes or CHUNK_BYTES + MAX_HEADER_BYTES
        self.allow_shutdown = allow_shutdown
        self.curve = curve
        self.keys_dir = keys_dir  # None: the user's config dir (keys.default_keys_dir)
        self._authenticator: Any = None
        self._user_id: str | None = None  # the ZAP user id (the client's public key) of the request being handled
        self.device: Any = None  # a torch.device once started
        self.precision = ""  # the network passes' dtype that precision 'auto' gives on it, once started
        self._stop = threading.Event()
        self._jobs: dict[tuple[bytes, str], Job] = {}
        self._backlog = Backlog(unread_bytes, max(unread_bytes, TOTAL_BYTES), unread_seconds)
        self._dropped: set[bytes] = set()  # clients that stopped reading: ignored from then on
        self._room = Room(max_queue, waiting_bytes or 2 * largest_upload(max_pixels))
        self._uploads = Uploads(upload_seconds)
        self._queue = JobQueue()
        self._handlers: dict[str, Callable[[bytes, Message], None]] = {
            "hello": self._hello, "ping": self._ping, "fill": self._fill, "data": self._data,
            "cancel": self._cancel, "status": self._status, "shutdown": self._shutdown,
        }

    # ------------------------------------------------------------------------------------------- life cycle

    def start(self) -> None:
        # One daemon per ipc:// socket, told before anything loads (libzmq's bind would take a running one's over).
        self._claim = claim_socket(self.endpoint)
        self._context: Any = None
        try:
            self._open()
        except BaseException:  # a daemon that cannot listen or fill (no VGG-19 weights) leaves nothing behind
            if self._authenticator is not None:
                self._authenticator.stop()
            if self._context is not None:
                self._context.destroy(linger=0)
            release_socket(self._claim)
            raise

    def _open(self) -> None:
        from engine.device import precision_name, resolve_device, resolve_precision  # late: these load torch
        from engine.pipeline import fill

        raise_open_file_limit()
        self.device = resolve_device(self.device_name)
        self.precision = precision_name(resolve_precision("auto", self.device))
        server_keys = self._server_keys() if self.curve else None  # before any socket: a key problem leaks nothing
        self._context = zmq.Context()
        self._router = router_socket(self._context, self.endpoint, self.max_message_bytes)
        if server_keys is not None:
            self._authenticator = start_curve(self._context, self._router, server_keys, self.keys_dir)
        self._inbox = self._context.socket(zmq.PULL)
        self._inbox.linger = 0
        outbox = f"inproc://neural-fill-worker-{id(self)}"
        bind_router(self._router, self.endpoint)
        self._inbox.bind(outbox)
        self._worker = Worker(self._context, outbox, self._queue, fill, preload=self._preload)
        self._worker.start()
        self._worker.loaded.wait()  # a daemon that cannot fill (no VGG-19 weights) says so now, and does not start
        if self._worker.load_error is not None:
            raise self._worker.load_error
        log.info("listening on %s (device %s, precision %s, at most %d pixels, %d queued jobs)", self.endpoint,
                 self.device, self.precision, self.max_pixels, self.max_queue)
        if is_tcp(self.endpoint) and not self.curve:
            log.warning("--insecure-loopback: any program of any user of this machine may send this daemon work, "
                        "see others' job ids, and crash it through libzmq (docs/security.md)")

    def _preload(self) -> None:
        """Everything the default fill needs, loaded at start (on the worker's thread, start waits) so that the
        first fill does not pay for it. Without the content network the daemon still starts: each fill that needs
        it is refused with the loader's message, and other fills work."""
        from engine.pipeline import preload

        error = preload(get_preset("default"), self.device)
        if error is not None:
            log.warning("the content network did not load: %s", error)

    def _server_keys(self) -> KeyPair:
        """The daemon's pair, made (with one client pair) on the first start."""
        self.keys_dir = ensure_keys(self.keys_dir)
        return load_pair(self.keys_dir, SERVER)

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._inbox, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not self._worker.is_alive():  # cannot happen by design; if it does, say so rather than hang
                    log.error("the compute worker has died; stopping")
                    break
                self._retry_backlog()
                self._drop_stalled_uploads()
                ready = dict(poller.poll(POLL_MS))
                if self._inbox in ready:
                    self._forward_from_worker()
                if self._router in ready:
                    self._serve_clients()
        finally:
            self._close()

    def stop(self) -> None:
        self._stop.set()

    def _close(self) -> None:
        running = self._queue.running
        if running is not None:
            running.daemon_stopping = True
            running.cancel.set()
        for job in self._queue.close():
            self._send(job.client, error_reply(ErrorCode.STOPPED, STOPPED_MESSAGE, job.job_id))
        for client, job_id in self._uploads.close():  # mid-upload: told now, not left to time out
            self._send(client, error_reply(ErrorCode.STOPPED, STOPPED_MESSAGE, job_id))
        self._worker.join(timeout=5)
        self._forward_from_worker()  # the running job's last word, when it had time to say it
        self._router.close()
        self._inbox.close()
        if self._authenticator is not None:
            self._authenticator.stop()
        if self._worker.is_alive():  # a fill that ignores cancel: leave it; the process is ending anyway
            log.warning("the running fill did not stop within 5 s")
        else:
            self._context.term()
        release_socket(self._claim)  # the socket file goes too: no client waits on a socket no one serves
        log.info("stopped")

    # ------------------------------------------------------------------------------------------ the socket loop

    def _serve_clients(self) -> None:
        for _ in range(BATCH):
            try:
                parts = self._router.recv_multipart(zmq.NOBLOCK, copy=False)  # Frames: they carry the User-Id
            except zmq.Again:
                return
            # Header and identity as bytes; data frames as views of ZeroMQ's buffers, never copied.
            client, header, *data = parts
            frames = [header.bytes, *(part.buffer for part in data)]
            client = client.bytes
            if client in self._dropped:
                continue
            self._user_id = user_id(parts[-1])
            try:
                self._handle(client, frames)
            except ProtocolError as error:
                self._send(client, error_reply(error.code, error.message, error.job_id))
            except Exception as error:  # a bug here must cost one reply, never the daemon
                log.exception("request from client %s failed", client.hex()[:10])
                self._send(client, error_reply(ErrorCode.INTERNAL, f"the daemon failed on this request "
                                                                   f"({type(error).__name__}): {error}"))

    def _forward_from_worker(self) -> None:
        for _ in range(BATCH):
            try:
                parts = self._inbox.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            # The result's pixels stay in ZeroMQ's frame on their way from the worker to the client.
            kind, client, job_id = (part.bytes for part in parts[:3])
            frames = parts[3:]
            if kind == FINAL:
                self._jobs.pop((client, job_id.decode()), None)
            self._send(client, frames, droppable=kind == EVENT)

    def _retry_backlog(self) -> None:
        """Each waiting client's replies in order, as far as it takes them; one that reads nothing for too long
        is dropped. A try per client per loop: nothing spins while a client does not read."""
        for client in self._backlog.clients():
            while (frames := self._backlog.first(client)) is not None:
                if not self._try_send(client, frames):
                    break
                if self._backlog.holds(client):  # not when the client turned out gone
                    self._backlog.sent_first(client)
            if self._backlog.overdue(client):
                self._drop(client, f"has read nothing for {self._backlog.patience:g} s")

    def _drop_stalled_uploads(self) -> None:
        for client, job_id in self._uploads.stalled():
            log.info("job %s of client %s: its data came too slowly; dropped", job_id, client.hex()[:10])
            self._send(client, error_reply(ErrorCode.STALLED, self._uploads.too_slow, job_id))

    def _send(self, client: bytes, frames: list[bytes], droppable: bool = False) -> None:
        """Never blocks: when a client is not reading and its queue is full, a progress event is dropped and
        anything else waits in the backlog, behind what already waits there."""
        if client in self._dropped:
            return
        waiting = self._backlog.holds(client)
        if (waiting or not self._try_send(client, frames)) and not droppable:
            self._hold(client, frames)

    def _hold(self, client: bytes, frames: list[bytes]) -> None:
        if not self._backlog.add(client, frames):
            self._drop(client, f"holds over {size_text(self._backlog.client_bytes)} of unread replies (or all "
                               f"clients over {size_text(self._backlog.total_bytes)})")

    def _try_send(self, client: bytes, frames: list[bytes]) -> bool:
        """True when libzmq took the message (or the client is gone: its jobs are then cancelled)."""
        try:
            self._router.send_multipart([client, *frames], zmq.NOBLOCK)
        except zmq.Again:
            return False
        except zmq.ZMQError as error:
            if error.errno != zmq.EHOSTUNREACH:
                raise
            self._backlog.forget(client)
            self._client_gone(client)
        return True

    def _drop(self, client: bytes, why: str) -> None:
        """A client that does not read: its replies are discarded, its jobs cancelled, and it is ignored from now
        on (logged once)."""
        replies, size = self._backlog.forget(client)
        self._dropped.add(client)
        log.warning("client %s %s: dropped (%d unread replies, %.1f MB, discarded; its jobs cancelled)",
                    client.hex()[:10], why, replies, size / 2**20)
        self._client_gone(client)

    def _client_gone(self, client: bytes) -> None:
        """Nobody is left to receive these jobs' results: stop them."""
        self._uploads.forget_client(client)
        for job in [job for job in self._jobs.values() if job.client == client]:
            log.info("%s: its client is gone; cancelling", job.describe())
            if self._queue.remove(job):
                del self._jobs[job.key]
            else:
                job.cancel.set()

    def _handle(self, client: bytes, frames: list[bytes]) -> None:
        message = decode(frames)
        handler = self._handlers.get(message.op)
        if handler is None:
            raise ProtocolError(ErrorCode.UNKNOWN_OP, f"'{message.op}' is a reply, not a request",
                                message.header.get("id") if isinstance(message.header.get("id"), str) else None)
        handler(client, message)

    # ------------------------------------------------------------------------------------------- operations

    def _hello(self, client: bytes, message: Message) -> None:
        self._send(client, encode({"op": "hello", "protocol": PROTOCOL_VERSION, "version": package_version(),
                                   "device": str(self.device), "precision": self.precision,
                                   "max_pixels": self.max_pixels, "max_queue": self.max_queue,
                                   "max_message_bytes": self.max_message_bytes, "presets": list(PRESETS),
                                   "features": list(FEATURES)}))

    def _ping(self, client: bytes, message: Message) -> None:
        self._send(client, encode({"op": "pong"}))

    def _status(self, client: bytes, message: Message) -> None:
        running = self._queue.running
        self._send(client, encode({"op": "status", "queued": len(self._queue), "uploading": len(self._uploads),
                                   "running": running.job_id if running is not None else None,
                                   "device": str(self.device)}))

    def _shutdown(self, client: bytes, message: Message) -> None:
        # Over CURVE, ZAP let only authorised keys in, and it names the key as the User-Id. An ipc:// socket is in a
        # 0700 folder (checked at start): only the daemon's own user (and root) reach it, and could send SIGTERM too.
        if not (self.allow_shutdown or (self.curve and self._user_id) or ipc_path(self.endpoint) is not None):
            raise ProtocolError(ErrorCode.UNAUTHORISED, "this daemon takes shutdown requests only over ipc:// or from "
                                "CURVE-authorised clients (stop it with SIGTERM or Ctrl-C)")
        log.info("shutdown requested by client %s", client.hex()[:10])
        self._send(client, encode({"op": "bye"}))
        self.stop()

    def _fill(self, client: bytes, message: Message) -> None:
        """A fill's header: checked, and its room taken; the job is queued when its data has come."""
        request = parse_fill(message, self.max_pixels)
        key = (client, request.job_id)
        if key in self._jobs or key in self._uploads:
            raise ProtocolError(ErrorCode.DUPLICATE_JOB, f"job '{request.job_id}' is already queued or running",
                                request.job_id)
        options = self._options(request)  # bad options, or no room, refused before any data is sent
        self._room.check(request.job_id, request.data_bytes, self._uploads.held(client) + self._queue.held(client),
                         self._uploads.held() + self._queue.held())
        self._uploads.start(client, request, options)

    def _data(self, client: bytes, message: Message) -> None:
        upload = self._uploads.add(client, job_id_of(message.header), message.blobs[0])
        if upload is None:
            return
        request = upload.request
        job = Job(client, request.job_id, request_image(request), request_mask(request), upload.options,
                  request_source(request))
        position = self._queue.put(job)
        self._jobs[job.key] = job
        log.info("%s: accepted (%dx%dx%d %s, preset %s), %d ahead", job.describe(), request.width, request.height,
                 request.channels, request.sample, request.preset, position)
        self._send(client, encode({"op": "accepted", "id": job.job_id, "position": position}))

    def _options(self, request: FillRequest) -> Any:
        from engine.device import resolve_precision  # loaded by start

        try:
            # The daemon owns the device: one worker serves it, whatever device the client's options name.
            chosen = {name: value for name, value in request.options.items() if name != "device"}
            options = get_preset(request.preset, **chosen).replace(device=self.device.type)
            options.check_work()  # as the fill would, but before its data is sent
            resolve_precision(options.precision, self.device)
            return options
        except (ValueError, TypeError) as error:  # OptionsError is a ValueError; a list where a number goes...
            raise ProtocolError(ErrorCode.BAD_INPUT, f"bad options: {error}", request.job_id) from None

    def _cancel(self, client: bytes, message: Message) -> None:
        job_id = job_id_of(message.header)
        if self._uploads.forget(client, job_id):
            log.info("job %s of client %s: cancelled while its data came", job_id, client.hex()[:10])
            self._send(client, encode({"op": "cancelled", "id": job_id}))
            return
        job = self._jobs.get((client, job_id))
        if job is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no job '{job_id}' of this client is queued or running", job_id)
        if self._queue.remove(job):  # still waiting: done at once
            del self._jobs[job.key]
            log.info("%s: cancelled while queued", job.describe())
            self._send(client, encode({"op": "cancelled", "id": job_id}))
        else:  # running: the engine stops at its next cancel check and the worker sends `cancelled`
            job.cancel.set()
