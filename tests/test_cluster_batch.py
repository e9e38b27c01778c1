"""`neural-fill batch --ray` on a real local Ray instance (2 CPUs): results equal to in-process fills, depth and
alpha kept, bad files as failures, an actor killed mid-batch, a driver interrupted and run again.

Fills use the preview preset at a 64 px working size on 64 px images, one torch thread per actor.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from daemon.batch.cluster import plan_workers, run_cluster_batch
from daemon.cli.main import main
from daemon.files import read_image, write_image
from engine import fill
from engine.options import get_preset
from tests.support.daemon_helpers import REPO
from tests.support.images import centre_mask, noisy_photo

pytestmark = pytest.mark.weights  # every actor loads the real VGG-19
SIZE = 64
SETTINGS = ["working_size=64", "seed=3", "threads=1"]
OPTIONS = get_preset("preview", working_size=64, seed=3, threads=1)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


def photos(root: Path, count: int) -> tuple[Path, Path, Path]:
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    for number in range(count):
        write_image(images / f"photo{number}.png", noisy_photo(SIZE, SIZE, seed=number))
        write_image(masks / f"photo{number}.png", centre_mask(SIZE, SIZE, SIZE // 4))
    return images, masks, root / "out"


def batch_args(images: Path, masks: Path, out: Path, *more: str) -> list[str]:
    args = ["batch", "--images", str(images), "--masks", str(masks), "--out", str(out), "--preset", "preview", "-q"]
    for setting in SETTINGS:
        args += ["--set", setting]
    return [*args, *more]


def test_actors_fill_like_this_process_keep_depth_and_alpha_and_report_bad_files(tmp_path, local_ray, capsys):
    images, masks, out = photos(tmp_path, 4)
    deep = (noisy_photo(SIZE, SIZE, seed=7).astype(np.uint16) * 257 + 128)
    write_image(images / "deep.png", deep)
    see_through = np.concatenate([noisy_photo(SIZE, SIZE, seed=8), np.full((SIZE, SIZE, 1), 200, np.uint8)], -1)
    write_image(images / "see-through.png", see_through)
    for name in ("deep.png", "see-through.png", "broken.png"):
        write_image(masks / name, centre_mask(SIZE, SIZE, SIZE // 4))
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    write_image(images / "lonely.png", noisy_photo(SIZE, SIZE, seed=9))  # no mask for it

    assert main(batch_args(images, masks, out, "--ray", "--workers", "2")) == 1  # a file failed
    summary = capsys.readouterr().out
    assert "done 6, skipped 0 (already there), failed 2" in summary, summary
    assert re.search(r"failed broken\.png: .*cannot decode", summary), summary
    assert "failed lonely.png: no mask for it" in summary
    counts = [int(n) for n in re.findall(r"ray worker \d \([\d.]+\): (\d+) filled", summary)]
    assert len(counts) == 2 and sum(counts) == 6, summary  # both actors, per-worker counts
    mask = centre_mask(SIZE, SIZE, SIZE // 4)
    for name in ["photo0.png", "photo1.png", "photo2.png", "photo3.png", "deep.png", "see-through.png"]:
        image, result = read_image(images / name), read_image(out / name)
        assert result.dtype == image.dtype and result.shape == image.shape
        assert np.array_equal(result, fill(image, mask, OPTIONS)), name  # the in-process fill, pixel for pixel
    assert read_image(out / "deep.png").dtype == np.uint16
    assert np.array_equal(read_image(out / "see-through.png")[..., 3][mask == 0], see_through[..., 3][mask == 0])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["photo0.png", "photo1.png", "photo2.png", "photo3.png", "deep.png", "see-through.png"])  # nothing else


class OutputWatcher(threading.Thread):
    """Looks at the output folder every few milliseconds: each output must appear once, whole (a rename), and be
    never replaced; nothing but outputs and hidden temporary files may be seen."""

    def __init__(self, folder: Path, expected: set[str]) -> None:
        super().__init__(daemon=True)
        self.folder, self.expected = folder, expected
        self.inodes: dict[str, set[int]] = {}
        self.strangers: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            last = self.stop.is_set()  # one more look after the batch returned: its last file is seen too
            self.look()
            if last:
                return
            time.sleep(0.005)

    def look(self) -> None:
        for entry in os.scandir(self.folder) if self.folder.is_dir() else []:
            if entry.name.startswith("."):
                continue  # a write in progress (engine/atomic.py): never taken for an output
            if entry.name not in self.expected:
                self.strangers.add(entry.name)
            with contextlib.suppress(FileNotFoundError):
                self.inodes.setdefault(entry.name, set()).add(entry.inode())


def test_an_actor_killed_mid_batch_costs_only_its_file_which_is_retried_and_written_once(tmp_path, local_ray):
    images, masks, out = photos(tmp_path, 8)
    expected = {f"photo{n}.png" for n in range(8)}
    watcher = OutputWatcher(out, expected)
    watcher.start()
    workers: list[dict] = []
    killed: list[int] = []

    def kill_one_after_the_first_file(outcome) -> None:
        if not killed:
            killed.append(workers[0]["pid"])
            os.kill(workers[0]["pid"], signal.SIGKILL)

    report = run_cluster_batch(images, masks, out, OPTIONS, workers=2, quiet=True, on_ready=workers.extend,
                               on_outcome=kill_one_after_the_first_file)
    watcher.stop.set()
    watcher.join()
    assert killed and len(workers) == 2
    assert report.count("done") == 8 and not report.failed, report.summary()
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # no temporary file left either
    assert not watcher.strangers
    assert {name: len(inodes) for name, inodes in watcher.inodes.items()} == {name: 1 for name in expected}
    mask = centre_mask(SIZE, SIZE, SIZE // 4)
    image = read_image(images / "photo5.png")
    assert np.array_equal(read_image(out / "photo5.png"), fill(image, mask, OPTIONS))


def test_an_interrupted_driver_keeps_what_it_wrote_and_a_rerun_fills_the_rest(tmp_path, local_ray, capsys):
    images, masks, out = photos(tmp_path, 8)
    # As a terminal's Ctrl-C reaches a command in the foreground: a suite run in the background (`pytest &`)
    # ignores SIGINT, and a child inherits that, so the driver would finish its batch instead.
    as_in_a_terminal = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                        "runpy.run_module('daemon.cli', run_name='__main__', alter_sys=True)")
    command = [sys.executable, "-c", as_in_a_terminal,
               *batch_args(images, masks, out, "--ray", "auto", "--workers", "1")]
    driver = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and [p for p in out.iterdir() if not p.name.startswith(".")]):
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    stdout, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130, stdout + stderr
    assert "batch interrupted (Ctrl-C)" in stderr and "not started" in stdout, stdout + stderr
    written = sorted(p.name for p in out.iterdir())
    assert 1 <= len(written) < 8 and not [name for name in written if name.startswith(".")]  # no partial file

    assert main(batch_args(images, masks, out, "--ray")) == 0
    summary = capsys.readouterr().out
    assert f"done {8 - len(written)}, skipped {len(written)} (already there), failed 0" in summary, summary
    assert sorted(p.name for p in out.iterdir()) == [f"photo{n}.png" for n in range(8)]


def test_the_worker_plan_follows_gpus_then_cores_then_memory():
    big, small = (16, 64 * 2**30), (2, 8 * 2**30)
    assert plan_workers([big, big], gpus=2, workers=None).count == 2  # one per GPU
    assert plan_workers([big, big], gpus=2, workers=None).num_gpus == 1
    one_each = plan_workers([big, small], gpus=0, workers=None)
    assert (one_each.count, one_each.threads, one_each.num_cpus) == (18, 1, 1)  # one actor of one thread per core
    assert plan_workers([(16, 6 * 2**30)], 0, None).count == 4  # 1.5 GB each: the memory holds four
    assert plan_workers([(2, 2**30)], 0, None).count == 1  # at least one per node
    asked = plan_workers([(2, 8 * 2**30)], 0, workers=1)
    assert (asked.count, asked.threads, asked.num_cpus) == (1, 2, 2)  # the cores shared out
    assert plan_workers([small], 0, workers=2, threads=3).threads == 3  # the user's own count is kept


def test_without_ray_installed_the_flag_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    images, masks, out = photos(tmp_path, 1)
    assert main(batch_args(images, masks, out, "--ray")) == 2
    assert "pip install -e '.[cluster]'" in capsys.readouterr().err


def test_a_cluster_that_cannot_take_the_work_is_an_error_not_an_interruption(tmp_path, local_ray, monkeypatch,
                                                                            capsys):
    from daemon.batch import cluster

    def no_cpu(*_args, **_kwargs):
        raise cluster.ClusterError("the Ray cluster has no node with a CPU")

    monkeypatch.setattr(cluster, "plan_workers", no_cpu)
    images, masks, out = photos(tmp_path, 1)
    assert main(batch_args(images, masks, out, "--ray")) == 2
    err = capsys.readouterr().err
    assert "no node with a CPU" in err and "interrupted" not in err
