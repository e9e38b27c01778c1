"""Reaching the daemon from the plug-in: a Link that has answered `hello`, starting the daemon first when the
settings say how and none answers.

Why start it: a user who picked Filters > Neural Fill wants a fill, not a lesson in services. The daemon is started
only from the command install.py wrote (the checkout's own environment), only for the configured endpoint, and
detached, so it outlives this plug-in process and keeps its networks loaded for the next fill. Sandboxed GIMPs
(Flatpak, Snap) cannot run host programs, so install.py writes no command for them and the message says what to run.
Two fills started at once take turns (a lock in the plug-in's state folder): the second finds the daemon the first
started instead of starting one that would be refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from wire import endpoints, link, locks, protocol

from plugin_settings import Settings

__all__ = ["connect", "link", "protocol"]

HELLO_SECONDS = 2.0  # a running daemon answers hello at once, even during a fill
START_SECONDS = 90.0  # loading the networks takes seconds on a CPU; a cold disk and a first torch import, more
START_LOCK = "autostart.lock"  # beside the log: a folder of this user's alone, for any endpoint


def log_path() -> Path:
    """The started daemon's log, in this user's own state folder: a shared temp folder would let another user
    put a link in its place."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Logs"
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "neural-fill" / "daemon.log"


def open_log(path: Path) -> int:
    """A descriptor appending to `path`, made 0600 in a 0700 folder; a link at its place is refused (O_NOFOLLOW)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o600)


def start_hint(settings: Settings, endpoint: str) -> str:
    if settings.daemon_command and endpoint == settings.endpoint:
        return f"Start it with: {' '.join(settings.daemon_command)}"
    return f"Start it with: neural-fill daemon --bind {endpoint}"


def curve_keys(settings: Settings):
    """The client keys install.py copied beside the plug-in (CURVE only)."""
    import zmq.auth

    keys = settings.keys_dir
    try:
        server_public, _ = zmq.auth.load_certificate(keys / "server.key")
        client_public, client_secret = zmq.auth.load_certificate(keys / "client.key_secret")
    except (OSError, ValueError, TypeError) as error:
        raise link.DaemonUnavailable(f"CURVE is on but the client keys in {keys} cannot be read ({error}): "
                                     "run install.py again") from None
    return link.CurveKeys(server_public, client_public, client_secret)


def connect(settings: Settings, endpoint: str, waiting: Callable[[str], None] | None = None):
    """A Link to the daemon at `endpoint` that has answered hello, or DaemonUnavailable saying how to start one.

    `waiting(text)` is called while a started daemon loads (the plug-in pulses GIMP's progress bar). A socket
    another user could be behind (link.UnsafeSocket) or a daemon that refuses this client's handshake is reported,
    never answered by starting a daemon."""
    keys = curve_keys(settings) if endpoints.uses_curve(endpoint, settings.curve) else None
    may_start = bool(settings.daemon_command) and endpoint == settings.endpoint
    connection = link.Link(endpoint, settings.timeout, keys, start_hint=start_hint(settings, endpoint))
    try:
        if not may_start:
            connection.call({"op": "hello"}, "hello", timeout=HELLO_SECONDS)
        elif none_answers(connection):
            with one_starter():
                if none_answers(connection):  # else another fill started it while this one waited
                    process = start_daemon(settings.daemon_command)
                    wait_for_daemon(connection, process, waiting)
    except BaseException:
        connection.close()
        raise
    return connection


def none_answers(connection) -> bool:
    """True when no daemon answers hello; a refused handshake is raised: a daemon is there."""
    try:
        connection.call({"op": "hello"}, "hello", timeout=HELLO_SECONDS)
        return False
    except link.HandshakeRefused:
        raise
    except link.DaemonUnavailable:
        return True


@contextmanager
def one_starter() -> Iterator[None]:
    """Held while this plug-in checks for a daemon and starts one: another fill started at the same moment waits
    here, then finds the daemon answering."""
    path = log_path().parent / START_LOCK
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    held = locks.lock(path, wait=START_SECONDS + HELLO_SECONDS)
    if held is None:
        raise link.DaemonUnavailable(f"another Neural Fill fill has been starting the daemon for over "
                                     f"{START_SECONDS:g} s; its output is in {log_path()}")
    try:
        yield
    finally:
        held.release()


def start_daemon(command: tuple[str, ...]) -> subprocess.Popen:
    """The daemon in its own session (it outlives the plug-in), its output appended to log_path()."""
    detach = {"start_new_session": True} if os.name != "nt" else {
        "creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
    try:
        log = open_log(log_path())
        try:
            return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    close_fds=True, **detach)
        finally:
            os.close(log)
    except OSError as error:
        raise link.DaemonUnavailable(f"the Neural Fill daemon is not running and could not be started "
                                            f"with {' '.join(command)}: {error}") from None


def wait_for_daemon(connection, process: subprocess.Popen, waiting: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if waiting is not None:
            waiting("Starting the Neural Fill daemon...")
        try:
            connection.call({"op": "hello"}, "hello", timeout=HELLO_SECONDS)
            return
        except link.HandshakeRefused:
            raise
        except link.DaemonUnavailable:
            if process.poll() is not None:
                raise link.DaemonUnavailable(
                    f"the Neural Fill daemon stopped while starting (exit {process.returncode}); "
                    f"its output is in {log_path()}: {last_line(log_path())}") from None
    raise link.DaemonUnavailable(f"the Neural Fill daemon did not answer within {START_SECONDS:g} s of "
                                        f"starting; its output is in {log_path()}")


def last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""
