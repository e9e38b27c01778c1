"""Choosing the compute device, the precision of its network passes and the CPU threads."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

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


PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# CPU units that run bfloat16 convolutions natively: oneDNN takes VGG-19 2-4x faster through them than in float32
# (docs/benchmarks.md); without them bfloat16 is emulated and no faster.
FAST_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


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
    """'cpu (AMD EPYC, bf16 units: avx512_bf16, 2 threads), precision bfloat16': for --verbose, the daemon's log
    and the benchmarks' figures."""
    if device.type == "cpu":
        units = ", ".join(fast_bfloat16_units()) or "none"
        where = f"cpu ({cpu_model()}, bf16 units: {units}, {threads or usable_cores()} threads)"
    elif device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        where = device.type
    return f"{where}, precision {precision_name(precision)}"
