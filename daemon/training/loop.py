"""`neural-fill train`: train the content network on any folder of photos, resumably.

    neural-fill train --data PHOTOS --out RUN [--steps 3000] [--batch 8] [--device auto]

- Photos: every image in --data (recursively), or the files its manifest.json lists (`neural-fill photos`).
  Training and validation are split by photo (a photo's crops are never on both sides), deterministically.
- Samples: random multi-scale crops brought to 128x128 (a crop side from 128 px to the whole short side, so the
  network sees both texture and scene layout), flips, a little brightness change, and a random hole (centre
  squares, strokes, blobs: engine/hole_masks.py).
- Every --checkpoint-every steps and on Ctrl-C: RUN/checkpoint.safetensors (decoder and Adam state, float32) and
  RUN/checkpoint.json (step, random state, validation history). Running the same command again resumes.
- Every --validate-every steps: mean hole L1 and PSNR on fixed validation crops and holes.
- At the end: RUN/content_net.safetensors (float16, what the engine loads) and RUN/MODEL_CARD.md.

Tensors are stored with safetensors only: nothing here or in the weights executes code when loaded.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from daemon.evaluation.metrics import psnr
from engine.atomic import atomic_path, write_atomically
from engine.content_net import WEIGHTS_NAME, ContentNet, Decoder, save_decoder
from engine.content_training import PERCEPTUAL_WEIGHT, PSNR_FLOOR, PSNR_WEIGHT, training_step

from .photos import VALIDATION_CROPS, batch_of, load_photo, training_split, validation_set
from .settings import TrainingError, TrainSettings

AVERAGE_DECAY = 0.998  # at most: the shipped weights average the last few hundred steps
CHECKPOINT, CHECKPOINT_INFO = "checkpoint.safetensors", "checkpoint.json"
WEIGHTS, MODEL_CARD = WEIGHTS_NAME, "MODEL_CARD.md"  # the file name the engine looks for in the data dir


@dataclass
class RunState:
    step: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)  # validation figures by step


# -------------------------------------------------------------------------------------------- checkpoints

def save_checkpoint(out: Path, decoder: Decoder, averaged: Decoder, optimizer: torch.optim.Optimizer,
                    state: RunState, generator: torch.Generator) -> None:
    from safetensors.torch import save_file

    tensors = {f"decoder.{name}": value.detach().cpu().contiguous() for name, value in decoder.state_dict().items()}
    tensors.update({f"average.{name}": value.detach().cpu().contiguous()
                    for name, value in averaged.state_dict().items()})
    for index, param_state in optimizer.state_dict()["state"].items():
        for key, value in param_state.items():
            tensors[f"adam.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["generator"] = generator.get_state()
    with atomic_path(out / CHECKPOINT) as temporary:  # tensors first: an info file never points past them
        save_file(tensors, str(temporary))
    info = {"step": state.step, "seconds": state.seconds, "history": state.history}
    write_atomically(out / CHECKPOINT_INFO, json.dumps(info, indent=1))


def load_checkpoint(out: Path, decoder: Decoder, averaged: Decoder, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator) -> RunState:
    from safetensors.torch import load_file

    tensors = load_file(str(out / CHECKPOINT))
    info = json.loads((out / CHECKPOINT_INFO).read_text(encoding="utf-8"))
    decoder.load_state_dict({name[len("decoder."):]: value for name, value in tensors.items()
                             if name.startswith("decoder.")})
    average = {name[len("average."):]: value for name, value in tensors.items() if name.startswith("average.")}
    averaged.load_state_dict(average or decoder.state_dict())  # a checkpoint from before averaging starts it here
    optimizer_state = optimizer.state_dict()
    restored: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("adam."):
            _, index, key = name.split(".", 2)
            restored.setdefault(int(index), {})[key] = value
    optimizer_state["state"] = restored
    optimizer.load_state_dict(optimizer_state)
    generator.set_state(tensors["generator"])
    return RunState(info["step"], info["seconds"], info["history"])


# ------------------------------------------------------------------------------------------------ the run

def train(settings: TrainSettings, vgg=None) -> RunState:
    """Train (or resume) into settings.out; returns the final state. KeyboardInterrupt saves and re-raises."""
    from engine.device import configure_cpu, resolve_device, usable_cores
    from engine.vgg import load_vgg

    device = resolve_device(settings.device)
    if device.type == "cpu":
        # Every core, not fewer when the machine is busy: the weights' gradients are sums that round differently on
        # different thread counts, and a resumed run must reach the same weights as a straight one.
        configure_cpu(usable_cores())
    training_files, validation_files = training_split(settings.data)
    if not training_files or not validation_files:
        raise TrainingError(f"{settings.data}: at least two photos are needed (one to validate on), found "
                            f"{len(training_files) + len(validation_files)}")
    say = (lambda _: None) if settings.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    say(f"{len(training_files)} training photos, {len(validation_files)} validation photos, device {device}")
    training_photos = [load_photo(path) for path in training_files]
    validation_images, validation_holes = validation_set([load_photo(p) for p in validation_files], settings.seed)

    vgg = vgg if vgg is not None else load_vgg(device)  # first: building it draws random numbers
    torch.manual_seed(settings.seed)
    network = ContentNet(vgg, Decoder().to(device))
    # What is validated and shipped is the running average of the weights: single Adam steps on batches of 8
    # jitter the correction, which costs PSNR on smooth crops where the harmonic fill is nearly exact.
    averaged = ContentNet(vgg, copy.deepcopy(network.decoder).requires_grad_(False))
    optimizer = torch.optim.Adam(network.decoder.parameters(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(settings.seed)
    settings.out.mkdir(parents=True, exist_ok=True)
    state = RunState()
    if (settings.out / CHECKPOINT_INFO).is_file():
        state = load_checkpoint(settings.out, network.decoder, averaged.decoder, optimizer, generator)
        say(f"resuming from step {state.step} of {settings.steps}")

    if state.step == 0:  # the untrained figure, for the model card
        state.history.append(validate(averaged, validation_images, validation_holes, state, device))
    started = time.monotonic() - state.seconds
    bar = tqdm(total=settings.steps, initial=state.step, disable=settings.quiet, unit="step", dynamic_ncols=True)
    try:
        while state.step < settings.steps:
            images, holes = batch_of(training_photos, settings.batch, generator)
            parts = training_step(network, optimizer, images.to(device), holes.to(device))
            update_average(averaged.decoder, network.decoder, state.step)
            state.step += 1
            state.seconds = time.monotonic() - started
            bar.update(1)
            bar.set_postfix_str(f"hole L1 {100 * parts.hole_l1:.2f}%")
            if state.step % settings.validate_every == 0 or state.step == settings.steps:
                state.history.append(validate(averaged, validation_images, validation_holes, state, device))
                bar.write(f"step {state.step}: validation hole L1 {state.history[-1]['hole_l1_percent']:.2f}%, "
                    f"PSNR {state.history[-1]['hole_psnr']:.2f} dB")
            if state.step % settings.checkpoint_every == 0:
                save_checkpoint(settings.out, network.decoder, averaged.decoder, optimizer, state, generator)
    except KeyboardInterrupt:
        save_checkpoint(settings.out, network.decoder, averaged.decoder, optimizer, state, generator)
        bar.close()
        say(f"interrupted at step {state.step}: checkpoint saved; run the same command to resume")
        raise
    bar.close()
    save_checkpoint(settings.out, network.decoder, averaged.decoder, optimizer, state, generator)
    save_decoder(averaged.decoder, settings.out / WEIGHTS, {"steps": str(state.step)})
    write_model_card(settings, state, training_files, validation_files, device)
    say(f"weights: {settings.out / WEIGHTS}; model card: {settings.out / MODEL_CARD}")
    return state


def update_average(averaged: Decoder, decoder: Decoder, step: int) -> None:
    """Exponential moving average; its window grows with the run (as TensorFlow's with num_updates), so a short
    run's average is not stuck at the untrained weights."""
    decay = min(AVERAGE_DECAY, (1 + step) / (10 + step))
    with torch.no_grad():
        for average, value in zip(averaged.parameters(), decoder.parameters(), strict=True):
            average.lerp_(value, 1 - decay)


def validate(network: ContentNet, images: torch.Tensor, holes: torch.Tensor, state: RunState,
             device: torch.device) -> dict:
    errors, psnrs = [], []
    network.decoder.eval()
    for start in range(0, len(images), 16):
        image, hole = images[start:start + 16].to(device), holes[start:start + 16].to(device)
        with torch.no_grad():
            predicted = network(image, hole)
        for one, target, mask in zip(predicted, image, hole, strict=True):
            area = mask.sum() * 3
            errors.append(float(((one - target).abs() * mask).sum() / area))
            mse = float((((one - target) ** 2) * mask).sum() / area)
            psnrs.append(psnr(max(mse, 1e-10), peak=1.0))
    return {"step": state.step, "seconds": round(state.seconds, 1), "hole_l1_percent": 100 * float(np.mean(errors)),
            "hole_psnr": float(np.mean(psnrs)), "crops": len(errors)}


def write_model_card(settings: TrainSettings, state: RunState, training: list[Path], validation: list[Path],
                     device: torch.device) -> None:
    sources = sorted({path.relative_to(settings.data).parts[0] for path in training + validation})
    rows = "\n".join(f"| {entry['step']} | {entry['hole_l1_percent']:.2f} | {entry['hole_psnr']:.2f} |"
                     for entry in state.history)
    card = f"""# Neural Fill content network

The content predictor of Neural Fill (engine/content_net.py): frozen ImageNet VGG-19 encoder (Simonyan and
Zisserman; weights by the Visual Geometry Group, Oxford, CC BY 4.0) and a learned decoder that corrects a
harmonic fill of the hole, 128x128, any hole shape.

## Data
- Folder: `{settings.data}` ({len(training)} training photos, {len(validation)} validation photos, split by photo)
- Top-level folders (sources): {", ".join(sources)}
- Samples: random square crops (128 px to the short side) at 128x128, flips, brightness 0.9-1.1; holes: centre
  squares, rectangles, strokes, blobs.

## Training
- Steps: {state.step}, batch {settings.batch}, Adam lr {settings.learning_rate}, seed {settings.seed}; the weights
  are the running average of the decoder's (decay {AVERAGE_DECAY})
- Device: {device}; time: {state.seconds / 60:.1f} min
- Loss: hole L1 + {PSNR_WEIGHT} x mean log10(hole squared error + {PSNR_FLOOR}) per picture + {PERCEPTUAL_WEIGHT} x
  relative L1 of VGG-19 relu2_1/relu3_1 features

## Validation ({VALIDATION_CROPS} fixed crops and holes per validation photo)
| step | hole L1 % | hole PSNR dB |
|---|---|---|
{rows}
"""
    (settings.out / MODEL_CARD).write_text(card, encoding="utf-8")
