"""The progress bar: the engine's Progress events on a tqdm bar on stderr."""

from __future__ import annotations

import sys
import threading
from typing import Any

from tqdm import tqdm

from engine.progress import Progress


class ProgressBar:
    """A tqdm bar on stderr fed by the engine's Progress events.

    enabled: None shows it only when the stream is a terminal (tqdm's own rule), True always, False never. Its
    clock ticks on between events (a load, a long scale): a frozen clock looks like a hung program."""

    TICK = 0.5  # seconds between redraws of the clock when no event comes

    def __init__(self, enabled: bool | None = None, stream: Any = None, min_interval: float = 0.1) -> None:
        self._bar = tqdm(total=100, desc="starting", file=stream if stream is not None else sys.stderr,
                         mininterval=min_interval, disable=None if enabled is None else not enabled, dynamic_ncols=True,
                         bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        self._closed = threading.Event()
        if not self._bar.disable:
            threading.Thread(target=self._tick, name="progress-clock", daemon=True).start()

    def _tick(self) -> None:
        while not self._closed.wait(self.TICK):
            self._bar.refresh()

    def __call__(self, event: Progress) -> None:
        self._bar.set_description_str(describe_progress(event), refresh=False)
        self._bar.update(100 * event.fraction - self._bar.n)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._bar.close()


def describe_progress(event: Progress) -> str:
    parts = [event.stage]
    if event.regions > 1:
        parts.append(f"hole {event.region + 1}/{event.regions}")
    if event.scales:
        parts.append(f"scale {event.scale}/{event.scales}")
    if event.iterations:
        parts.append(f"iteration {event.iteration}/{event.iterations}")
    return ", ".join(parts)
