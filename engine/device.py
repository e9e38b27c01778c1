"""Choosing the compute device and CPU threads."""

from __future__ import annotations

import os

import torch

from .errors import OptionsError


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; naming a device that is not there is an error, not a silent fallback."""
    mps = getattr(torch.backends, "mps", None)
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(mps and mps.is_available()),
    }
    if name == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if available[d]))
    if not available.get(name, False):
        raise OptionsError(f"device {name!r} is not available on this machine (use 'auto' or 'cpu')")
    return torch.device(name)


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def configure_cpu(threads: int) -> None:
    """Torch's intra-op threads (the cores this process may use, unless the options name a number), and
    denormal floats flushed to zero: L-BFGS history and deep features drift into denormals, which the CPU
    handles dozens of times slower (measured: the whole fill ran twice as long)."""
    torch.set_flush_denormal(True)
    wanted = threads or usable_cores()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
