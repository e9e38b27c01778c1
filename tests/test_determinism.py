"""The same input, seed and device kind give the same pixels, whatever the thread count and the machine's load:
in process, through the daemon (whose fills take fewer threads when other processes are busy), and on Ray
(tests/test_cluster_batch.py compares its 1-thread actors with fills in process)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from daemon.service.client import Client
from engine import fill
from engine.device import OTHERS, torch_threads, usable_cores
from engine.options import get_preset
from engine.reductions import total
from engine.resample import bilinear
from tests.support.daemon_helpers import REPO, start_daemon


def on_threads(count: int, work):
    with torch_threads(count):
        return work()


@pytest.mark.parametrize("shape", [(7,), (3, 100, 77), (1, 3, 256, 320), (1, 3, 512, 512), (2, 64, 300, 301)])
def test_a_whole_tensor_sum_is_the_same_on_one_and_two_threads(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(len(shape)))
    one, two = on_threads(1, lambda: total(x)), on_threads(2, lambda: total(x))
    assert torch.equal(one, two)
    assert one.item() == pytest.approx(x.double().sum().item(), rel=1e-4, abs=1e-2)


def test_bilinear_resizing_is_the_same_on_one_and_two_threads():
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    grow = on_threads(1, lambda: bilinear(x, (131, 129))), on_threads(2, lambda: bilinear(x, (131, 129)))
    assert torch.equal(*grow)


def grass(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A real texture, on which one and two threads gave 51-70 % different hole pixels before the fix."""
    image = np.asarray(Image.open(REPO / "tests" / "data" / "grass.png").convert("RGB").resize((size, size)))
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4:size * 3 // 4, size // 4:size * 3 // 4] = 255
    return image, mask


@pytest.mark.weights
@pytest.mark.slow
@pytest.mark.parametrize("preset, size", [("preview", 128), ("default", 256), ("preview", 640)])
def test_a_fill_on_one_thread_equals_the_fill_on_two(preset, size):
    # 640 px: a crop over the working size, so the native-resolution detail transfer runs too.
    image, mask = grass(size)
    one = fill(image, mask, get_preset(preset, seed=3, threads=1))
    two = fill(image, mask, get_preset(preset, seed=3, threads=2))
    assert np.array_equal(one, two)
    assert not np.array_equal(one[mask > 0], image[mask > 0])  # a fill happened


@pytest.mark.weights
@pytest.mark.slow
@pytest.mark.skipif(usable_cores() < 2, reason="needs two cores: one to keep busy, one to fill on")
def test_a_daemon_fill_beside_a_busy_process_equals_a_fill_in_process_on_every_core(tmp_path):
    image, mask = grass(256)
    options = get_preset("preview", seed=7)  # threads 0: as many as the load leaves
    every_core = fill(image, mask, options.replace(threads=usable_cores()))  # as an idle machine's fill runs
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'fill.sock'}")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        OTHERS.cores()  # start a fresh window: the next look measures the busy process alone
        time.sleep(0.5)
        assert OTHERS.cores() >= 0.5, "the busy process should keep a core busy: the daemon then fills on fewer threads"
        with Client(daemon.endpoint, timeout=120) as client:
            loaded = client.fill(image, mask, options=options)
    finally:
        busy.kill()
        busy.wait()
        daemon.stop()
        thread.join(10)
    assert np.array_equal(loaded, every_core)


def test_more_threads_than_cores_are_not_taken():
    # 256 threads on 2 cores made a fill 17x slower and left 266 threads in the daemon.
    from engine.device import configure_cpu

    before = torch.get_num_threads()
    try:
        assert configure_cpu(256) == usable_cores()
        assert torch.get_num_threads() == usable_cores()
    finally:
        torch.set_num_threads(before)
