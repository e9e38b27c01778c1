"""A training run's settings and defaults (no torch: the CLI builds its flags from them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class TrainingError(ValueError):
    """A run that cannot start (no photos, a bad setting); reported as one line."""


@dataclass
class TrainSettings:
    data: Path
    out: Path
    steps: int = 3000
    batch: int = 8
    learning_rate: float = 2e-4
    validate_every: int = 250
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "auto"
    quiet: bool = False
