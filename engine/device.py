"""Choosing the compute device, the precision of its network passes and the CPU threads."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

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


def configure_cpu(threads: int) -> int:
    """Torch's and the compiled kernels' threads, and denormal floats flushed to zero (L-BFGS history and deep
    features drift into denormals, which the CPU handles dozens of times slower: measured, the whole fill ran twice
    as long). Returns the thread count.

    threads 0: one per core this process may use, less the cores other processes kept busy lately; more threads
    than cores are never taken (they only contend: 256 threads made a fill 17x slower). The count changes no pixel
    (`one_thread`). Torch's
    threads spin while they wait for each other; when one shares its core with another busy process the others
    spin through its time slices, and a fill beside one busy process took 3-10x its idle time with every core's
    thread, under 2x with one fewer (docs/benchmarks.md). Sleeping at once instead (OMP_WAIT_POLICY=PASSIVE) made
    the idle fill 1.6x slower."""
    torch.set_flush_denormal(True)
    wanted = min(threads, usable_cores()) if threads else max(1, usable_cores() - round(OTHERS.cores()))
    import numba  # the pixel search's threads (per calling thread: the daemon's worker sets its own)

    # First: starting numba's OpenMP pool sets the calling thread's OpenMP thread count, which torch's is.
    numba.set_num_threads(min(wanted, numba.config.NUMBA_NUM_THREADS))
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def one_thread() -> AbstractContextManager:
    """Torch on one CPU thread for the ops whose result depends on how many threads share them (bilinear
    resizing, grid_sample, LAPACK's eigh, BLAS's dot products), so that the same seed gives the same pixels
    whatever the thread count and the load; whole-tensor sums go through engine/reductions.py instead. Every other
    op the engine uses computes each output alike on any number of threads (tests/test_determinism.py). On a GPU
    it changes nothing."""
    return torch_threads(1)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch's CPU threads set to `count` inside the block, and back after."""
    before = torch.get_num_threads()
    if before == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class OtherProcesses:
    """How many cores other processes kept busy since the last look: all CPUs' busy time (Linux /proc/stat; niced
    processes not counted) less this process's own CPU time, over the wall time between looks. A look more than
    STALE s after the last one measures a fresh MIN_WINDOW s instead; the first one counts from the engine's import."""

    MIN_WINDOW = 0.05
    STALE = 5.0

    def __init__(self) -> None:
        self.last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        """(wall s, all CPUs' busy s, this process's CPU s), None where /proc/stat cannot be read."""
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = [int(value) for value in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        # Idle, iowait and niced time do not count: a niced process yields its core to the fill.
        spare = fields[1] + fields[3] + (fields[4] if len(fields) > 4 else 0)
        busy = (sum(fields[:8]) - spare) / ticks  # guest time is already in user time
        own = os.times()
        return time.monotonic(), busy, own.user + own.system

    def cores(self) -> float:
        if self.last is None:
            return 0.0
        now = self._sample()
        if now is None:
            return 0.0
        if now[0] - self.last[0] > self.STALE:
            self.last = now
            time.sleep(self.MIN_WINDOW)
            now = self._sample() or now
        elif now[0] - self.last[0] < self.MIN_WINDOW:
            time.sleep(self.MIN_WINDOW - (now[0] - self.last[0]))
            now = self._sample() or now
        wall, busy, own = (b - a for a, b in zip(self.last, now, strict=True))
        self.last = now
        return max(0.0, (busy - own) / max(wall, 1e-6))


OTHERS = OtherProcesses()

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# CPU units that run bfloat16 convolutions natively: oneDNN takes VGG-19 2-4x faster through them than in float32
# (docs/benchmarks.md); without them bfloat16 is emulated and no faster.
FAST_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpuinfo(field: str) -> str | None:
    """The first value of `field` in Linux's /proc/cpuinfo (None where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (empty where they cannot be read)."""
    return frozenset((_cpuinfo("flags") or "").split())


def cpu_model() -> str:
    import platform

    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown"


def fast_bfloat16_units() -> list[str]:
    """Which of the CPU's units run bfloat16 natively (empty: none)."""
    flags = cpu_flags()
    return [flag for flag in FAST_BFLOAT16_FLAGS if flag in flags]


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The dtype the VGG-19 and content-network passes run in under autocast. 'auto': bfloat16 on a CPU with bf16
    units and on a GPU that has it, float16 on other CUDA GPUs, float32 otherwise (MPS: not measured yet)."""
    if name == "auto":
        if device.type == "cpu":
            return torch.bfloat16 if fast_bfloat16_units() else torch.float32
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in PRECISIONS:
        raise OptionsError(f"unknown precision {name!r}: choose auto, {', '.join(PRECISIONS)}")
    if name == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise OptionsError("this GPU has no bfloat16: use precision float16 or auto")
    if name == "float16" and device.type == "cpu":  # refused, not swapped: a result must be what was asked for
        raise OptionsError("precision float16 is emulated on a CPU (a fill took 40 times as long): use auto, "
                           "float32 or bfloat16")
    return PRECISIONS[name]


def precision_name(dtype: torch.dtype) -> str:
    return next(name for name, value in PRECISIONS.items() if value == dtype)


def reduced_precision(device: torch.device, dtype: torch.dtype) -> AbstractContextManager:
    """Autocast to `dtype` for network passes (nothing for float32). The caller turns the outputs back into
    float32: the optimised pixels, the losses' reductions and the matching stay float32."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def describe_compute(device: torch.device, precision: torch.dtype, threads: int = 0) -> str:
    """'cpu (AMD EPYC, bf16 units: avx512_bf16, 2 threads), precision bfloat16': for --verbose and the
    benchmarks' figures. threads 0: configure_cpu's choice, made at each fill."""
    if device.type == "cpu":
        units = ", ".join(fast_bfloat16_units()) or "none"
        count = f"{threads} threads" if threads else f"up to {usable_cores()} threads"
        where = f"cpu ({cpu_model()}, bf16 units: {units}, {count})"
    elif device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        where = device.type
    return f"{where}, precision {precision_name(precision)}"
