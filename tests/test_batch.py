"""`neural-fill batch` in this process and against real daemons: sharing, equal results, resume, bad files, a daemon
that is not there, a daemon killed mid-batch.

Fills use the preview preset at a 64 px working size on 64 px images, so each takes a fraction of a second.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from daemon.batch import Outcome, pair_files, run_batch
from daemon.cli import errors
from daemon.cli.main import main
from daemon.files import read_image, write_image
from daemon.service.client import Client
from daemon.service.server import Daemon
from engine import fill
from engine.options import get_preset
from tests.support.daemon_helpers import REPO, free_port
from tests.support.images import centre_mask, noisy_photo

pytestmark = pytest.mark.weights  # every daemon loads the real VGG-19 at start
SIZE = 64
# Two threads, not the default's count that follows the machine's load: the sums of another count differ in the
# last bit, and results are compared with single fills.
SETTINGS = ["working_size=64", "seed=3", "threads=2"]
OPTIONS = get_preset("preview", working_size=64, seed=3, threads=2)
TIMEOUT = 3.0  # seconds of silence before a daemon is dropped: short, yet ample for a busy 2-core machine


@pytest.fixture(scope="module")
def two_daemons():
    endpoints, running = [], []
    for _ in range(2):
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        daemon = Daemon(endpoint, max_pixels=1_000_000)
        daemon.start()
        thread = threading.Thread(target=daemon.run, name="batch-test-daemon", daemon=True)
        thread.start()
        endpoints.append(endpoint)
        running.append((daemon, thread))
    yield endpoints
    for daemon, thread in running:
        daemon.stop()
        thread.join(10)


def make_folders(root, count: int, mask_style: str = "same") -> tuple:
    images, masks, out = root / "images", root / "masks", root / "out"
    images.mkdir()
    masks.mkdir()
    for number in range(count):
        write_image(images / f"photo{number}.png", noisy_photo(SIZE, SIZE, seed=number))
        name = f"photo{number}.png" if mask_style == "same" or number % 2 else f"photo{number}_mask.png"
        write_image(masks / name, centre_mask(SIZE, SIZE, SIZE // 4))
    return images, masks, out


def batch_args(images, masks, out, endpoints) -> list[str]:
    args = ["batch", "--images", str(images), "--masks", str(masks), "--out", str(out), "--preset", "preview",
            "--timeout", str(TIMEOUT), "-q"]
    for setting in SETTINGS:
        args += ["--set", setting]
    for endpoint in endpoints:
        args += ["--daemon", endpoint]
    return args


def test_with_no_daemon_the_batch_fills_in_this_process_and_a_rerun_resumes(tmp_path, capsys):
    images, masks, out = make_folders(tmp_path, 3)
    write_image(masks / "photo2.png", np.zeros((SIZE // 2, SIZE // 2), np.uint8))  # the wrong size
    assert main(batch_args(images, masks, out, [])) == errors.EXIT_FAILURE
    summary = capsys.readouterr().out
    assert "done 2, skipped 0 (already there), failed 1" in summary and "this process: 2 filled" in summary
    assert "failed photo2.png: " in summary and "the mask is 32x32 pixels but the image is 64x64" in summary
    assert not (out / "photo2.png").exists()
    mask = centre_mask(SIZE, SIZE, SIZE // 4)
    for number in range(2):
        image, result = read_image(images / f"photo{number}.png"), read_image(out / f"photo{number}.png")
        assert np.array_equal(result[mask == 0], image[mask == 0])
        assert np.array_equal(result, fill(image, mask, OPTIONS))  # a batch file is the single fill of it

    write_image(masks / "photo2.png", mask)  # put right: the same command does what is left
    assert main(batch_args(images, masks, out, [])) == errors.EXIT_OK
    assert "done 1, skipped 2 (already there), failed 0" in capsys.readouterr().out
    assert main([*batch_args(images, masks, out, []), "--force", "--json"]) == errors.EXIT_OK  # everything again
    summary = json.loads(capsys.readouterr().out)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (3, 0, 0)
    assert summary["filled_by"] == {"this process": 3} and not summary["failures"]


def test_a_daemon_that_is_not_there_is_reported_within_seconds_not_per_file(tmp_path, capsys):
    images, masks, out = make_folders(tmp_path, 3)
    args = batch_args(images, masks, out, [f"ipc://{tmp_path / 'nobody.sock'}"])
    args[args.index("--timeout") + 1] = "30"  # the default: silence mid-fill is given that long, hello is not
    started = time.monotonic()
    assert main(args) == errors.EXIT_FAILURE
    assert time.monotonic() - started < 15
    summary = capsys.readouterr().out
    assert "dropped: no answer" in summary and summary.count("no daemon left to fill it") == 3, summary


def test_masks_pair_by_stem_or_stem_mask(tmp_path):
    images, masks, out = make_folders(tmp_path, 3, mask_style="mixed")
    (images / "lonely.jpg").write_bytes(b"")
    (images / "notes.txt").write_text("not an image")
    pairs = pair_files(images, masks, out, output_format="tiff")
    assert [p.image.name for p in pairs] == ["lonely.jpg", "photo0.png", "photo1.png", "photo2.png"]
    assert [p.mask.name if p.mask else None for p in pairs] == [None, "photo0_mask.png", "photo1.png",
                                                                 "photo2_mask.png"]
    assert pairs[1].output == out / "photo0.tif"


def test_in_one_shared_folder_only_name_mask_files_are_masks(tmp_path):
    write_image(tmp_path / "a.png", noisy_photo(SIZE, SIZE))
    write_image(tmp_path / "a_mask.png", centre_mask(SIZE, SIZE, 8))
    write_image(tmp_path / "b.png", noisy_photo(SIZE, SIZE))
    pairs = pair_files(tmp_path, tmp_path, tmp_path / "out")
    assert [(p.image.name, p.mask.name if p.mask else None) for p in pairs] == [("a.png", "a_mask.png"),
                                                                                ("b.png", None)]


def test_two_daemons_share_a_batch_with_the_results_of_single_fills_and_a_rerun_skips_all(tmp_path, two_daemons):
    images, masks, out = make_folders(tmp_path, 6, mask_style="mixed")
    report = run_batch(images, masks, out, two_daemons, OPTIONS, timeout=TIMEOUT, quiet=True)
    assert report.count("done") == 6 and not report.failed, report.summary()
    assert all(count > 0 for count in report.by_daemon.values()), report.by_daemon

    mask = centre_mask(SIZE, SIZE, SIZE // 4)
    for number in range(6):  # known pixels untouched, whichever daemon filled the file
        image, result = read_image(images / f"photo{number}.png"), read_image(out / f"photo{number}.png")
        assert np.array_equal(result[mask == 0], image[mask == 0])
        assert not np.array_equal(result[mask > 0], image[mask > 0])
    with Client(two_daemons[0], timeout=30) as client:  # and a file equals a single fill of it
        assert np.array_equal(result, client.fill(image, mask, options=OPTIONS))

    again = run_batch(images, masks, out, two_daemons, OPTIONS, timeout=TIMEOUT, quiet=True)
    assert again.count("skipped") == 6 and again.count("done") == 0


def test_bad_masks_are_those_files_failures_and_the_rest_is_filled(tmp_path, two_daemons, capsys):
    images, masks, out = make_folders(tmp_path, 4)
    write_image(masks / "photo1.png", np.zeros((SIZE // 2, SIZE // 2), np.uint8))  # the wrong size
    write_image(masks / "photo2.png", np.zeros((SIZE, SIZE), np.uint8))  # selects nothing: bad_input
    (masks / "photo3.png").unlink()  # no mask at all
    assert main(batch_args(images, masks, out, two_daemons)) == errors.EXIT_FAILURE
    summary = capsys.readouterr().out
    assert "done 1, skipped 0 (already there), failed 3" in summary
    for name in ("photo1.png", "photo2.png", "photo3.png"):
        assert f"failed {name}:" in summary
    assert "no mask" in summary and "the mask selects nothing" in summary
    assert "bad_input" not in summary  # the daemon's words for people, not its protocol code
    assert sorted(p.name for p in out.iterdir()) == ["photo0.png"]


def test_a_daemon_killed_mid_batch_leaves_the_work_to_the_other_and_a_rerun_resumes(tmp_path, two_daemons):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    doomed = subprocess.Popen([sys.executable, "-m", "daemon.cli", "daemon", "--bind", endpoint], cwd=REPO,
                              stderr=subprocess.DEVNULL)
    try:
        with Client(endpoint, timeout=120) as client:
            client.hello()  # waits for it to load its networks
        images, masks, out = make_folders(tmp_path, 8)

        def kill_after_the_first_result(outcome: Outcome) -> None:
            # At the batch's first result, whoever gave it: 7 files are left then, so the doomed daemon has a job
            # in flight or takes one next (killed after its own first result, a freshly started daemon could be
            # outrun by the warm one until no file was left for it).
            if doomed.poll() is None:
                doomed.send_signal(signal.SIGKILL)
                doomed.wait()

        report = run_batch(images, masks, out, [endpoint, two_daemons[0]], OPTIONS, timeout=TIMEOUT, quiet=True,
                           on_outcome=kill_after_the_first_result)
        assert doomed.poll() is not None
        assert report.count("done") == 8 and not report.failed, report.summary()
        assert endpoint in report.dropped and report.by_daemon[two_daemons[0]] >= 1

        for name in ("photo2.png", "photo5.png"):
            (out / name).unlink()
        again = run_batch(images, masks, out, [two_daemons[1]], OPTIONS, timeout=TIMEOUT, quiet=True)
        assert again.count("skipped") == 6 and again.count("done") == 2
        assert {o.pair.image.name for o in again.outcomes if o.status == "done"} == {"photo2.png", "photo5.png"}
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()


def test_with_no_daemon_answering_every_file_fails_with_the_reason(tmp_path, capsys):
    images, masks, out = make_folders(tmp_path, 2)
    nobody = f"ipc://{tmp_path / 'nobody.sock'}"
    args = batch_args(images, masks, out, [nobody])
    args[args.index("--timeout") + 1] = "0.3"
    assert main(args) == errors.EXIT_FAILURE
    summary = capsys.readouterr().out
    assert f"daemon {nobody} dropped" in summary and summary.count("no daemon left to fill it") == 2
    assert not any(out.iterdir())


def test_results_among_the_inputs_are_refused_before_any_work(tmp_path, capsys):
    images, masks, _ = make_folders(tmp_path, 1)
    assert main(batch_args(images, masks, images, ["ipc://unused"])) == errors.EXIT_BAD_INPUT
    assert "--out must be a folder of its own" in capsys.readouterr().err


def test_a_batch_stopped_by_sigterm_prints_its_summary_and_keeps_what_it_wrote(tmp_path, two_daemons):
    images, masks, out = make_folders(tmp_path, 12)
    batch = subprocess.Popen([sys.executable, "-m", "daemon.cli", *batch_args(images, masks, out, two_daemons[:1])],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(out.glob("*.png")) and batch.poll() is None:
            assert time.monotonic() < deadline, "no output after 120 s"
            time.sleep(0.02)
        batch.send_signal(signal.SIGTERM)
        stdout, stderr = batch.communicate(timeout=60)
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.wait()
    assert batch.returncode == errors.EXIT_TERMINATED, stderr
    written = sorted(path.name for path in out.iterdir())
    assert written and len(written) < 12 and not any(name.endswith(".part") for name in written), written
    done = int(re.search(r"^done (\d+),", stdout, re.MULTILINE).group(1))
    assert done == len(written), stdout
    started = re.search(r"cancelled (\d+) \(in flight\), not started (\d+)", stdout)
    assert started and done + int(started.group(1)) + int(started.group(2)) == 12, stdout
    assert f"the {done} outputs written are kept" in stderr and "no output written" not in stderr, stderr
    with Client(two_daemons[0], timeout=10) as client:  # the daemon is fine and free
        assert client.status()["running"] is None
