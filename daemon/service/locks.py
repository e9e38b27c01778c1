"""Exclusive locks on files in a private folder: one daemon per ipc:// socket (libzmq's bind would silently take an
existing socket over, leaving the first daemon deaf), and one plug-in at a time starting the daemon.

Standard library only: install.py copies it beside the plug-in. Windows has neither ipc:// nor fcntl: there the
locks are always granted (a second daemon on a tcp:// port fails at bind instead).
"""

from __future__ import annotations

import os
import time
from contextlib import suppress
from pathlib import Path

from .endpoints import DaemonConfigError, ipc_path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

RETRY_SECONDS = 0.05


class DaemonRunning(DaemonConfigError):  # noqa: N818 - a state, told as the reason not to start
    """Another daemon holds the socket this one was to listen on."""


class Held:
    """A locked file, open until release(). Locks belong to the open file (flock): another open of the same file,
    in this process too, waits for it."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    def write(self, text: str) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, text.encode(), 0)

    def release(self, remove: tuple[Path, ...] = ()) -> None:
        """Unlock; `remove` (the lock file among them, when it is to go) is removed first, while still held."""
        if self._fd is None:
            return
        for path in remove:
            with suppress(FileNotFoundError):
                os.unlink(path)
        os.close(self._fd)
        self._fd = None


def lock(path: Path, wait: float = 0.0) -> Held | None:
    """The exclusive lock on `path` (made 0600 when missing; a link there is refused), or None when another holder
    keeps it for `wait` seconds."""
    if fcntl is None:
        return Held(path, None)
    deadline = time.monotonic() + wait
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        fd = os.open(path, flags, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        return None
                    time.sleep(RETRY_SECONDS)
            # The holder before us may have removed the file as it let go: then the lock that counts is on the
            # file at `path` now, not on the one we opened.
            with suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(fd), os.stat(path)):
                    return Held(path, fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def socket_lock_path(socket: Path) -> Path:
    return socket.with_name(socket.name + ".lock")


def claim_socket(endpoint: str) -> Held | None:
    """The daemon's hold on its ipc:// socket (None for any other endpoint), kept while it runs and released with
    release_socket(); it names this process in the lock file. Raises DaemonRunning when another daemon holds it."""
    path = ipc_path(endpoint)
    if path is None:
        return None
    held = lock(socket_lock_path(path))
    if held is None:
        try:
            who = f" (pid {int(socket_lock_path(path).read_text(encoding='ascii'))})"
        except (OSError, ValueError):  # gone meanwhile, or its holder has not written its pid yet
            who = ""
        raise DaemonRunning(f"a Neural Fill daemon is already running on {endpoint}{who}: stop it first "
                            f"(`neural-fill stop --daemon {endpoint}`), or listen on another socket")
    held.write(f"{os.getpid()}\n")
    return held


def release_socket(held: Held | None) -> None:
    """The socket file and its lock file removed (while still held: a daemon starting now finds neither), then
    the lock let go."""
    if held is not None:
        socket = held.path.with_name(held.path.name.removesuffix(".lock"))
        held.release(remove=(socket, held.path))
