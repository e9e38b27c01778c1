"""`neural-fill train`: the command line of daemon/train.py (kept apart so that `neural-fill` starts without
loading torch)."""

from __future__ import annotations

import signal
from pathlib import Path

DEFAULT_STEPS, DEFAULT_BATCH, DEFAULT_LEARNING_RATE = 3000, 8, 2e-4
DEFAULT_VALIDATE_EVERY, DEFAULT_CHECKPOINT_EVERY = 250, 100


def add_command(commands) -> None:
    train_parser = commands.add_parser(
        "train", help="train the content network on a folder of photos (resumable)",
        description="Train the content network on a folder of photos. Running the same command again resumes from "
                    "the last checkpoint in --out. Writes --out/content_net.safetensors and --out/MODEL_CARD.md.")
    train_parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="folder of photos")
    train_parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                              help="run folder: checkpoints, the weights and the model card")
    train_parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"default {DEFAULT_STEPS}")
    train_parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"default {DEFAULT_BATCH}")
    train_parser.add_argument("--lr", type=float, default=DEFAULT_LEARNING_RATE, dest="learning_rate",
                              help=f"Adam learning rate (default {DEFAULT_LEARNING_RATE})")
    train_parser.add_argument("--validate-every", type=int, default=DEFAULT_VALIDATE_EVERY, metavar="N")
    train_parser.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY, metavar="N")
    train_parser.add_argument("--seed", type=int, default=0, help="seeds the crops, holes and weights")
    train_parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    train_parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    train_parser.set_defaults(run=run_train)


def run_train(args) -> int:
    from .cli import CliError, signal_handled  # late: cli imports this module to register the command

    if not args.data.is_dir():
        raise CliError(f"{args.data}: no such folder")
    for name in ("steps", "batch", "validate_every", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1")
    from .train import TrainingError, TrainSettings, train  # late: torch

    # SIGTERM (systemd, kill, a batch scheduler) stops the run like Ctrl-C: with a checkpoint to resume from.
    try:
        with signal_handled(signal.SIGTERM, _interrupt):
            train(TrainSettings(args.data, args.out, args.steps, args.batch, args.learning_rate,
                                args.validate_every, args.checkpoint_every, args.seed, args.device, args.quiet))
    except TrainingError as error:
        raise CliError(str(error)) from None
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
