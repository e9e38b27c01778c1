"""Signals while a command runs: SIGTERM as an exception (so a half-written output is removed on the way out), the
first Ctrl-C as a request to cancel at the engine's next check."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.progress import CancelCheck

from .errors import Terminated


@contextmanager
def signal_handled(signum: int, handler: Callable[[int, object], None]) -> Iterator[None]:
    """`handler` for `signum` while the block runs, the previous one after. Off the main thread (main() called from
    a test's thread) nothing changes: the signal keeps its usual meaning."""
    try:
        previous = signal.signal(signum, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM as the Terminated exception while a command runs (the daemon command sets its own handler)."""
    def on_sigterm(signum: int, frame: object) -> None:
        raise Terminated

    with signal_handled(signal.SIGTERM, on_sigterm):
        yield


@contextmanager
def ctrl_c_cancels() -> Iterator[CancelCheck]:
    """The first Ctrl-C asks the engine to stop at its next cancel check; a second one stops at once."""
    requested = threading.Event()

    def on_ctrl_c(signum: int, frame: object) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    with signal_handled(signal.SIGINT, on_ctrl_c):
        yield requested.is_set
