"""Choosing the precision of the network passes and the CPU threads (engine/device.py), on this machine."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numba
import pytest
import torch

from engine.device import (
    OTHERS,
    OtherProcesses,
    configure_cpu,
    describe_compute,
    fast_bfloat16_units,
    resolve_precision,
    usable_cores,
)
from engine.errors import OptionsError


def test_auto_precision_is_bfloat16_exactly_where_the_cpu_has_bf16_units():
    flags = Path("/proc/cpuinfo").read_text().split()
    has_units = "amx_bf16" in flags or "avx512_bf16" in flags
    assert bool(fast_bfloat16_units()) == has_units
    assert resolve_precision("auto", torch.device("cpu")) == (torch.bfloat16 if has_units else torch.float32)
    assert resolve_precision("float32", torch.device("cpu")) == torch.float32
    assert resolve_precision("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(OptionsError, match="precision"):
        resolve_precision("int8", torch.device("cpu"))


def test_the_compute_description_names_the_cpu_its_units_the_threads_and_the_precision():
    text = describe_compute(torch.device("cpu"), torch.bfloat16, 3)
    assert "cpu (" in text and "bf16 units: " in text and "3 threads" in text and text.endswith("precision bfloat16")


@pytest.mark.skipif(usable_cores() < 2, reason="needs two cores: one for the busy process, one for the fill")
def test_a_busy_process_beside_the_fill_gets_a_core_of_its_own():
    others = OtherProcesses()
    busy = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        OTHERS.cores()  # the window the fill looks at starts now
        time.sleep(1.0)
        assert others.cores() > 0.6  # the spin loop, about one core
        configure_cpu(0)
        assert torch.get_num_threads() == usable_cores() - 1
        assert numba.get_num_threads() == min(usable_cores() - 1, numba.config.NUMBA_NUM_THREADS)
    finally:
        busy.kill()
        busy.wait()
    OTHERS.cores()
    time.sleep(1.0)
    assert others.cores() < 0.5  # gone again (this test process itself does not count)
    assert configure_cpu(0) == usable_cores()
    assert configure_cpu(1) == 1 and torch.get_num_threads() == 1  # a number asked for is kept
    configure_cpu(0)


def test_a_niced_busy_process_leaves_the_fill_every_core():
    # A niced process yields its core when the fill wants it: counting it would only slow the fill down.
    others = OtherProcesses()
    busy = subprocess.Popen(["nice", "-n", "19", "sh", "-c", "while :; do :; done"])
    try:
        OTHERS.cores()
        time.sleep(1.0)
        assert others.cores() < 0.5
        assert configure_cpu(0) == usable_cores()
    finally:
        busy.kill()
        busy.wait()


def test_float16_on_a_cpu_is_refused_saying_what_to_use():
    # Emulated: a fill took 22 s instead of 0.5 s. Refused rather than swapped, so a result is what was asked for.
    with pytest.raises(OptionsError, match="float16 is emulated on a CPU.*auto, float32 or bfloat16"):
        resolve_precision("float16", torch.device("cpu"))
