"""Progress events the engine reports, and the cancel check it polls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled


@dataclass(frozen=True)
class Progress:
    stage: str  # "prepare", "content", "synthesis", "detail", "blend", "done"
    fraction: float  # 0..1 over the whole fill, never decreasing
    region: int = 0  # which hole crop (0-based) of `regions`
    regions: int = 1
    scale: int = 0  # 1-based pyramid level while synthesising, 0 otherwise
    scales: int = 0
    iteration: int = 0
    iterations: int = 0


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


class Reporter:
    """Turns the engine's nested loops into monotone overall fractions and polls cancel on every report."""

    def __init__(self, callback: ProgressCallback | None, cancel: CancelCheck | None) -> None:
        self._callback = callback
        self._cancel = cancel
        self._last = 0.0

    def check_cancel(self) -> None:
        if self._cancel is not None and self._cancel():
            raise Cancelled("fill cancelled")

    def report(self, stage: str, fraction: float, **where: int) -> None:
        self.check_cancel()
        self._last = max(self._last, min(1.0, fraction))
        if self._callback is not None:
            self._callback(Progress(stage=stage, fraction=self._last, **where))
