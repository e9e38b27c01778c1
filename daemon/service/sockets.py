"""The daemon's ROUTER socket as libzmq should hold it: its limits, heartbeats and handshake time, CURVE through
zmq.auth's authenticator, and the ZAP User-Id a frame carries."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import zmq

from .endpoints import DaemonConfigError, ipc_path, is_ipv6
from .keys import KeyPair, authorised_dir

RECEIVE_HWM = 16  # messages libzmq queues per client before it stops reading that connection: 16 chunks
# Messages libzmq holds per client: progress events beyond it are dropped, replies wait in our Backlog.
SEND_HWM = 64
# A ZMTP 3 peer that has not finished its handshake by then is dropped. (A ZMTP 1.0 peer has no handshake: CURVE
# refuses it at once, which is one more reason CURVE is the default on tcp://.)
HANDSHAKE_MS = 10_000
# A peer that answers no ZMTP heartbeat for HEARTBEAT_TIMEOUT_MS is dropped, so a client lost without a TCP close
# (network gone, machine asleep) is noticed too; its jobs then stop at their next event (ROUTER_MANDATORY).
HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS = 5_000, 15_000

log = logging.getLogger("neural_fill.daemon")


def router_socket(context: zmq.Context, endpoint: str, max_message_bytes: int) -> zmq.Socket:
    """The ROUTER socket, not yet bound: CURVE, when on, must be set up before it binds."""
    router = context.socket(zmq.ROUTER)
    router.linger = 0
    router.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # sending to a vanished client fails: its jobs stop
    router.sndhwm = SEND_HWM
    router.rcvhwm = RECEIVE_HWM
    router.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_MS)
    router.ipv6 = is_ipv6(endpoint)
    router.heartbeat_ivl = HEARTBEAT_IVL_MS
    router.heartbeat_timeout = HEARTBEAT_TIMEOUT_MS
    return router


def bind_router(router: zmq.Socket, endpoint: str) -> None:
    """Bind, an ipc:// socket file made private (0600 under the umask) as its folder is. An address in use is a
    DaemonConfigError; any other failure an OSError."""
    private = ipc_path(endpoint) is not None
    umask = os.umask(0o077) if private else None
    try:
        router.bind(endpoint)
    except zmq.ZMQError as error:
        if error.errno == zmq.EADDRINUSE:
            raise DaemonConfigError(f"cannot listen on {endpoint}: the address is in use, by another Neural Fill "
                                    f"daemon (`neural-fill status --daemon {endpoint}` says) or another "
                                    "program: stop it, or listen elsewhere") from None
        raise OSError(f"cannot listen on {endpoint}: {error}") from None
    finally:
        if umask is not None:
            os.umask(umask)


def start_curve(context: zmq.Context, router: zmq.Socket, server: KeyPair, keys_dir: Path) -> object:
    """CURVE on `router`, with the authenticator that lets in only the keys in `keys_dir`'s clients/ folder; it
    must run before the socket binds, or early handshakes would go unchecked. Returns the authenticator."""
    from zmq.auth.thread import ThreadAuthenticator

    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    # The authorised keys are read now: a key added to clients/ counts from the next start.
    authenticator.configure_curve(domain="*", location=authorised_dir(keys_dir))
    router.curve_secretkey = server.secret
    router.curve_publickey = server.public
    router.curve_server = True
    log.info("CURVE on: keys in %s", keys_dir)
    return authenticator


def user_id(frame: zmq.Frame) -> str | None:
    """The ZAP User-Id libzmq attached to a received frame (the client's z85 public key under CURVE), or None."""
    try:
        return frame.get("User-Id") or None
    except zmq.ZMQError:  # no ZAP handler ran for this connection: the property does not exist
        return None


def raise_open_file_limit() -> None:
    """Every connection holds a descriptor: the soft limit (often 1024) raised to the hard one."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as error:  # macOS refuses RLIM_INFINITY
            log.warning("the open-file limit stays at %d: %s", soft, error)
