"""What an evaluation run is asked to do: the run follows it, the report restates it as a command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class EvalSettings:
    data: Path
    out: Path
    masks: str = "centre128"
    methods: list[str] | None = None  # None: every registered method (those that cannot run are skipped)
    limit: int | None = None
    seed: int = 0
    crops: int = 1  # crops per photo
    grids: int = 4  # comparison grids for the first this many samples
    quiet: bool = False
