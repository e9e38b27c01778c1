"""One DEALER connection to the daemon and the conversation of a fill job, in bytes: standard library, pyzmq and
msgpack only.

This is the client side that both `daemon.service.client.Client` (numpy, for the CLI, batch and tests) and the GIMP
plug-in (inside GIMP's own Python) use, so the job's conversation (accepted, progress, cancel, result, silence) is
written once. install.py copies this module, protocol.py, endpoints.py and locks.py beside the plug-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import zmq
from zmq.utils.monitor import recv_monitor_message

from .endpoints import DaemonConfigError, check_socket, is_ipv6
from .protocol import ErrorCode, Message, ProtocolError, decode, encode

POLL_SECONDS = 0.1  # how often a waiting fill looks at its cancel check
START_HINT = "Start it with `neural-fill daemon`"
# The handshake outcomes a link watches, the more telling failure the higher (a mechanism mismatch also ends the
# connection, which libzmq reports first without detail). getattr: a libzmq or pyzmq without them watches nothing.
HANDSHAKE_FAILURES = {getattr(zmq, f"EVENT_HANDSHAKE_FAILED_{name}", 0): rank
                      for rank, name in enumerate(("NO_DETAIL", "PROTOCOL", "AUTH"))}
HANDSHAKE_SUCCEEDED = getattr(zmq, "EVENT_HANDSHAKE_SUCCEEDED", 0)
KEY_REFUSED = getattr(zmq, "EVENT_HANDSHAKE_FAILED_AUTH", 0)
PROTOCOL_FAILED = getattr(zmq, "EVENT_HANDSHAKE_FAILED_PROTOCOL", 0)
MECHANISM_MISMATCH = getattr(zmq, "PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH", -1)
SAME_SETTING = ("Give both the same setting: --curve for an ipc:// socket, --insecure-loopback for plain tcp:// (the "
                "plug-in: run install.py again with the daemon's)")


class DaemonError(Exception):
    """The daemon refused or failed a request: the message is for people, `code` (protocol.ErrorCode) for code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message


class DaemonUnavailable(ConnectionError):  # noqa: N818 - reads better at the raise site than ...Error
    """No answer from the daemon within the timeout."""


class UnsafeSocket(DaemonUnavailable):
    """An ipc:// socket that another user could be behind (endpoints.check_socket): nothing was sent to it."""


class HandshakeRefused(DaemonUnavailable):
    """The daemon is there but ended the handshake: a key it does not know, or CURVE on one side only."""


class JobCancelled(Exception):  # noqa: N818 - it is an outcome, not a fault
    """The job was cancelled at the client's request."""


class CurveKeys:
    """The three keys a CURVE client needs (z85 bytes, as zmq.auth.load_certificate returns them)."""

    def __init__(self, server_public: bytes, client_public: bytes, client_secret: bytes) -> None:
        self.server_public = server_public
        self.client_public = client_public
        self.client_secret = client_secret


class Closing:
    """`with` closes it: for the link and the clients built on it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: C) -> C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


C = TypeVar("C", bound=Closing)


class Link(Closing):
    """A DEALER socket to one daemon. Not thread-safe: one Link per thread."""

    def __init__(self, endpoint: str, timeout: float = 10.0, curve: CurveKeys | None = None,
                 start_hint: str = START_HINT) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.start_hint = start_hint
        self.curve = curve is not None
        try:
            there = check_socket(endpoint)  # before a byte goes out: who is behind an ipc:// socket
        except DaemonConfigError as error:
            raise UnsafeSocket(str(error)) from None
        if not there:
            raise DaemonUnavailable(f"no Neural Fill daemon can be running at {endpoint}: its folder's parent "
                                    f"does not exist. {start_hint}")
        self._socket = zmq.Context.instance().socket(zmq.DEALER)
        self._socket.linger = 0
        self._socket.ipv6 = is_ipv6(endpoint)
        if curve is not None:
            self._socket.curve_serverkey = curve.server_public
            self._socket.curve_publickey = curve.client_public
            self._socket.curve_secretkey = curve.client_secret
        self._handshakes = self._watch_handshakes()
        self._failure: tuple[int, int] | None = None  # the most telling failed handshake since the last good one
        self._socket.connect(endpoint)

    def _watch_handshakes(self) -> zmq.Socket | None:
        """libzmq's report of each handshake, read only when an answer does not come (costs well under 1 ms)."""
        events = sum(HANDSHAKE_FAILURES) | HANDSHAKE_SUCCEEDED
        if not all(HANDSHAKE_FAILURES) or not HANDSHAKE_SUCCEEDED:
            return None
        try:
            monitor = self._socket.get_monitor_socket(events)
        except (zmq.ZMQError, NotImplementedError):
            return None
        monitor.linger = 0
        return monitor

    def close(self) -> None:
        if self._handshakes is not None:
            self._socket.disable_monitor()
            self._handshakes.close()
        self._socket.close()

    def call(self, header: dict[str, Any], reply_op: str, timeout: float | None = None) -> Message:
        """Send a request without data frames and wait for its reply."""
        self.send(encode(header))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None:
                break
            if message.op == reply_op:
                return message
            if message.op == "error" and "id" not in message.header:
                raise DaemonError(message.header.get("code", ErrorCode.INTERNAL), message.header.get("message", ""))
            # Anything else is left over from an earlier job (a late progress event): not ours now.
        raise self.unavailable(self.timeout if timeout is None else timeout)

    def follow(self, job_id: str, on_progress: Callable[[dict[str, Any]], None] | None = None,
               should_cancel: Callable[[], bool] | None = None) -> Message:
        """Wait for the result of a job already sent, passing its progress headers on and cancel up.

        A job may wait in the queue for long without a word, so after half the timeout of silence a ping asks
        whether the daemon is still there; with no answer by the full timeout it is taken as gone."""
        accepted = cancel_sent = pinged = False
        last_heard = time.monotonic()
        while True:
            if should_cancel is not None and not cancel_sent and should_cancel():
                self.send(encode({"op": "cancel", "id": job_id}))
                cancel_sent = True
            message = self.receive(POLL_SECONDS)
            if message is None:
                quiet = time.monotonic() - last_heard
                if quiet > self.timeout:
                    raise self.unavailable(self.timeout)
                if accepted and not pinged and quiet > self.timeout / 2:
                    self.send(encode({"op": "ping"}))
                    pinged = True
                continue
            last_heard, pinged = time.monotonic(), False
            if message.header.get("id", job_id) != job_id:
                continue  # left over from an earlier job
            op = message.op
            if op == "accepted":
                accepted = True
            elif op == "progress" and on_progress is not None:
                on_progress(message.header)
            elif op == "cancelled" or (cancel_sent and op in ("result", "error")):
                # Once cancel is asked for, a result that crossed it on the wire is dropped all the same.
                raise JobCancelled("fill cancelled")
            elif op == "result":
                return message
            elif op == "error":
                raise DaemonError(message.header.get("code", ErrorCode.INTERNAL), message.header.get("message", ""))

    def upload(self, job_id: str, messages: list[list[Any]]) -> None:
        """Send a fill's messages (protocol.fill_request) as fast as the daemon takes them. The daemon's refusal of
        the job (queue full, bad options, too large), which may come before its data is all sent, stops the upload
        and is raised as DaemonError."""
        for frames in messages:
            deadline = time.monotonic() + self.timeout
            while True:
                if self._socket.poll(0, zmq.POLLIN):
                    self._raise_refusal(job_id)
                try:
                    self._socket.send_multipart(frames, zmq.NOBLOCK)
                    break
                except zmq.Again:  # the daemon reads no faster: wait for room (or for its answer)
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self.unavailable(self.timeout)
                self._socket.poll(int(min(left, POLL_SECONDS) * 1000), zmq.POLLIN | zmq.POLLOUT)

    def _raise_refusal(self, job_id: str) -> None:
        """What came in while a job's data goes out: its refusal is raised; anything else is left over from an
        earlier job (before its data is complete the daemon says nothing else about this one)."""
        message = self.receive(0)
        if message is not None and message.op == "error" and message.header.get("id") == job_id:
            raise DaemonError(message.header.get("code", ErrorCode.INTERNAL), message.header.get("message", ""))

    def send(self, frames: list[Any]) -> None:
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            raise self.unavailable(self.timeout) from None

    def receive(self, timeout: float) -> Message | None:
        if not self._socket.poll(int(timeout * 1000)):
            return None
        header, *data = self._socket.recv_multipart(copy=False)
        try:
            # Data frames stay in ZeroMQ's buffers: the caller copies what it keeps.
            return decode([header.bytes, *(part.buffer for part in data)])
        except ProtocolError as error:
            raise DaemonError(error.code, f"the daemon sent a malformed message: {error.message}") from None

    def unavailable(self, waited: float) -> DaemonUnavailable:
        """Why no answer came: a refused handshake when libzmq said so, else silence."""
        where = f"the Neural Fill daemon at {self.endpoint}"
        failure = self._handshake_failure()
        if failure is None:
            return DaemonUnavailable(f"no answer from {where} within {waited:g} s: is it running? {self.start_hint}")
        event, value = failure
        if event == KEY_REFUSED:
            return HandshakeRefused(f"{where} refused this client's key (CURVE): add the client's public key "
                                    "(client.key) to the clients/ folder of the daemon's keys dir, then restart the "
                                    "daemon")
        if event == PROTOCOL_FAILED and value == MECHANISM_MISMATCH:
            this_side = ("speaks CURVE and the daemon does not" if self.curve
                         else "does not speak CURVE and the daemon does")
            return HandshakeRefused(f"{where} does not speak the same security as this client (CURVE on one side "
                                    f"only): this client {this_side}. {SAME_SETTING}")
        # Without detail: over TCP a daemon that closes on a mismatch often resets the connection before this side
        # has read why.
        if not self.curve:
            return HandshakeRefused(f"{where} ended every handshake with this client, which does not speak CURVE: "
                                    f"the daemon probably does (CURVE on one side only). {SAME_SETTING}")
        return HandshakeRefused(f"{where} ended every handshake with this client: check that the client's "
                                "server.key is the daemon's current public key, and that the daemon speaks CURVE")

    def _handshake_failure(self) -> tuple[int, int] | None:
        while self._handshakes is not None and self._handshakes.poll(0):
            event = recv_monitor_message(self._handshakes)
            kind, value = event["event"], event["value"]
            if kind == HANDSHAKE_SUCCEEDED:
                self._failure = None
            elif kind in HANDSHAKE_FAILURES and (
                    self._failure is None or HANDSHAKE_FAILURES[kind] >= HANDSHAKE_FAILURES[self._failure[0]]):
                self._failure = (kind, value)
        return self._failure
