"""The content network: shapes and masking, random holes, a short training run that learns and resumes exactly,
the weights file, and the network as the method's content predictor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from daemon.cli.main import build_parser, main
from daemon.training.loop import CHECKPOINT, MODEL_CARD, WEIGHTS, TrainSettings, train
from engine import content_net, fill, get_preset
from engine.content import harmonic_fill
from engine.content_net import SIZE, ContentNet, Decoder, load_decoder, predict_image, save_decoder
from engine.errors import WeightsError
from engine.hole_masks import KINDS, centre_square, random_hole
from tests.support.images import noisy_photo


@pytest.fixture
def network(random_vgg_model):
    torch.manual_seed(0)
    return ContentNet(random_vgg_model, Decoder())


def test_the_untrained_network_is_the_harmonic_fill_it_learns_to_correct(network):
    image = torch.rand(2, 3, SIZE, SIZE)
    hole = torch.stack([centre_square(SIZE), random_hole(SIZE, torch.Generator().manual_seed(3))])
    with torch.no_grad():
        out = network(image, hole)
    assert torch.allclose(out, harmonic_fill(image * (1 - hole), 1 - hole).clamp(0, 1), atol=1e-6)


def test_the_network_predicts_the_whole_image_and_never_changes_known_pixels(network):
    image = torch.rand(2, 3, SIZE, SIZE)
    hole = torch.stack([random_hole(SIZE, torch.Generator().manual_seed(seed)) for seed in (1, 2)])
    with torch.no_grad():
        out = network(image, hole)
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out * (1 - hole), image * (1 - hole))
    assert (out - image).abs().mul(hole).sum() > 0  # the hole is predicted, not left as it was


def test_random_holes_are_of_every_kind_seeded_and_never_empty():
    for kind in KINDS:
        for seed in range(20):
            hole = random_hole(SIZE, torch.Generator().manual_seed(seed), kind)
            assert hole.shape == (1, SIZE, SIZE) and set(hole.unique().tolist()) <= {0.0, 1.0}
            assert 0.005 < hole.mean() < 0.8, (kind, seed, float(hole.mean()))
    again = [random_hole(SIZE, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(*again)
    assert centre_square(SIZE)[0, SIZE // 4:3 * SIZE // 4, SIZE // 4:3 * SIZE // 4].all()
    assert centre_square(SIZE).sum() == (SIZE // 2) ** 2


def test_weights_round_trip_as_float16_safetensors_and_a_bad_file_is_a_clear_error(tmp_path, network):
    path = tmp_path / "net.safetensors"
    save_decoder(network.decoder, path)
    assert path.stat().st_size < 25 * 2**20
    loaded = load_decoder(path)
    for name, value in network.decoder.state_dict().items():
        assert torch.allclose(loaded.state_dict()[name], value.half().float())
    with pytest.raises(WeightsError, match="neural-fill train"):
        load_decoder(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="cannot be loaded"):
        load_decoder(tmp_path / "bad.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "old.safetensors"),
              metadata={"format": "neural-fill content decoder v1"})  # the first design's weights
    with pytest.raises(WeightsError, match="decoder v1, not neural-fill content decoder v2: train them again"):
        load_decoder(tmp_path / "old.safetensors")


def write_photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        Image.fromarray(noisy_photo(180, 220, seed=index)).save(folder / f"photo{index}.png")


def write_two_colour_checkerboards(folder: Path, count: int) -> None:
    """Something a harmonic fill gets wrong and a network learns fast: every pixel is one of two colours, while
    diffusion leaves a mixture of both in the middle of a hole."""
    folder.mkdir(parents=True)
    dark, light = np.array([20, 40, 90]), np.array([230, 210, 120])
    for index in range(count):
        rng = np.random.default_rng(index)
        cell = int(rng.integers(30, 50))
        y, x = np.mgrid[:180, :220]
        light_here = ((y + index * 7) // cell + (x + index * 11) // cell) % 2 == 1
        picture = np.where(light_here[..., None], light, dark) + rng.normal(0, 4, (180, 220, 3))
        Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(folder / f"photo{index}.png")


@pytest.mark.weights
@pytest.mark.slow
def test_a_short_run_learns_and_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    write_two_colour_checkerboards(tmp_path / "photos", 5)
    # A learning rate five times the default's: the run is short (it tests learning and resuming, not converging).
    common = {"data": tmp_path / "photos", "batch": 4, "learning_rate": 1e-3, "validate_every": 1000,
              "checkpoint_every": 5, "quiet": True}
    straight = train(TrainSettings(out=tmp_path / "straight", steps=20, **common))
    first, last = straight.history[0], straight.history[-1]
    assert first["step"] == 0 and last["step"] == 20
    assert last["hole_l1_percent"] < 0.95 * first["hole_l1_percent"], straight.history

    # Stop at 10 (as a Ctrl-C after a checkpoint would), then run the same command to 20.
    train(TrainSettings(out=tmp_path / "resumed", steps=10, **common))
    resumed = train(TrainSettings(out=tmp_path / "resumed", steps=20, **common))
    assert resumed.step == 20
    a = load_decoder(tmp_path / "straight" / WEIGHTS).state_dict()
    b = load_decoder(tmp_path / "resumed" / WEIGHTS).state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)  # the same batches, the same Adam state
    assert (tmp_path / "resumed" / CHECKPOINT).exists()
    card = (tmp_path / "resumed" / MODEL_CARD).read_text()
    assert "| 20 |" in card and "photos" in card


def test_train_eval_and_batch_see_the_same_photos_in_a_plain_folder(tmp_path):
    # One list of image suffixes: a photo format training reads but eval could not would be trained on, never scored.
    from PIL import Image

    from daemon.batch import pair_files
    from daemon.evaluation.photos import list_photos
    from daemon.training.photos import load_photo, training_split

    for name in ("a.png", "b.jpg", "c.tif", "d.webp", "e.bmp"):
        Image.new("RGB", (40, 30), (10, 20, 30)).save(tmp_path / name)
    training, validation = training_split(tmp_path)
    assert sorted(p.name for p in training + validation) == ["a.png", "b.jpg", "c.tif"]
    assert sorted(p.name for p in list_photos(tmp_path)[0]) == ["a.png", "b.jpg", "c.tif"]
    assert [pair.image.name for pair in pair_files(tmp_path, tmp_path, tmp_path / "out")] == ["a.png", "b.jpg", "c.tif"]
    assert load_photo(tmp_path / "c.tif").shape == (3, 30, 40)


def test_train_gives_sigterm_back_when_it_ends(tmp_path, monkeypatch):
    # During a run SIGTERM stops training with a checkpoint; after it, whatever handled SIGTERM before does again.
    from daemon.training import loop as train

    during = []
    monkeypatch.setattr(train, "train", lambda settings: during.append(signal.getsignal(signal.SIGTERM)))
    (tmp_path / "photos").mkdir()
    before = signal.getsignal(signal.SIGTERM)
    args = build_parser().parse_args(["train", "--data", str(tmp_path / "photos"), "--out", str(tmp_path / "run")])
    assert args.run(args) == 0  # the command itself, without main's own SIGTERM handling around it
    assert during and during[0] not in (before, signal.SIG_DFL)
    assert signal.getsignal(signal.SIGTERM) == before


def test_train_refuses_a_folder_without_photos_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]) == 2
    assert "at least two photos" in capsys.readouterr().err


@pytest.mark.weights
def test_a_network_the_user_trained_is_the_methods_content_predictor_when_asked(tmp_path, monkeypatch, network):
    from engine.weights import WEIGHTS_FILENAME, vgg19_path

    (tmp_path / WEIGHTS_FILENAME).symlink_to(vgg19_path())
    monkeypatch.setenv("NEURAL_FILL_DATA_DIR", str(tmp_path))  # where `neural-fill train` users put their own
    save_decoder(network.decoder, tmp_path / "content_net.safetensors")
    assert content_net.weights_path() == tmp_path / "content_net.safetensors"
    image = noisy_photo(96, 96, seed=3)
    mask = np.zeros((96, 96), np.uint8)
    mask[30:60, 30:60] = 255
    out = fill(image, mask, get_preset("preview", content="network"))
    assert np.array_equal(out[mask == 0], image[mask == 0])
    alone = predict_image(image, mask > 0)
    assert np.array_equal(alone[mask == 0], image[mask == 0])


@pytest.mark.weights
def test_the_shipped_network_fills_a_flat_colour_hole_with_that_colour():
    if not content_net.SHIPPED_WEIGHTS.exists():
        pytest.skip("no trained content network shipped yet (engine/data/content_net.safetensors)")
    image = np.zeros((128, 128, 3), np.uint8)
    image[:] = (180, 90, 40)
    hole = np.zeros((128, 128), bool)
    hole[32:96, 32:96] = True
    out = predict_image(image, hole, path=content_net.SHIPPED_WEIGHTS)
    assert np.abs(out[hole].astype(int) - (180, 90, 40)).max() < 12


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a running process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.weights
@pytest.mark.slow
def test_sigterm_stops_a_run_with_a_checkpoint_to_resume_from(tmp_path):
    write_photos(tmp_path / "photos", 3)
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "daemon.cli", "train", "--data", str(tmp_path / "photos"),
                                "--out", str(run), "--steps", "100000", "--batch", "2", "--checkpoint-every", "100000",
                                "-q"], stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    # Until it has loaded the networks and run some steps (no periodic checkpoint comes before step 100000): judged
    # by the CPU time it used, which a busy machine stretches in wall time but not in amount.
    deadline = time.monotonic() + 300
    while cpu_seconds(process.pid) < 15 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors
    assert json.loads((run / "checkpoint.json").read_text())["step"] > 0
