"""`neural-fill train`: train the content network (daemon/training; torch loads only when the command runs)."""

from __future__ import annotations

import signal
from pathlib import Path

from daemon.training.settings import TrainingError, TrainSettings
from engine.options import DEVICES

from .errors import EXIT_OK, CliError
from .signals import signal_handled

DEFAULT = TrainSettings(Path(), Path())


def add_command(commands) -> None:
    train_parser = commands.add_parser(
        "train", help="train the content network on a folder of photos (resumable)",
        description="Train the content network on a folder of photos. Running the same command again resumes from "
                    "the last checkpoint in --out. Writes --out/content_net.safetensors and --out/MODEL_CARD.md.")
    train_parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="folder of photos")
    train_parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR",
                              help="run folder: checkpoints, the weights and the model card")
    train_parser.add_argument("--steps", type=int, default=DEFAULT.steps, metavar="N", help="training steps in all")
    train_parser.add_argument("--batch", type=int, default=DEFAULT.batch, metavar="N", help="crops per step")
    train_parser.add_argument("--lr", type=float, default=DEFAULT.learning_rate, dest="learning_rate", metavar="X",
                              help="Adam learning rate")
    train_parser.add_argument("--validate-every", type=int, default=DEFAULT.validate_every, metavar="N",
                              help="steps between validations")
    train_parser.add_argument("--checkpoint-every", type=int, default=DEFAULT.checkpoint_every, metavar="N",
                              help="steps between checkpoints")
    train_parser.add_argument("--seed", type=int, default=DEFAULT.seed, metavar="N",
                              help="seeds the crops, holes and weights")
    train_parser.add_argument("--device", default=DEFAULT.device, choices=DEVICES, help="compute device")
    train_parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    train_parser.set_defaults(run=run_train)


def run_train(args) -> int:
    if not args.data.is_dir():
        raise CliError(f"{args.data}: no such folder")
    for name in ("steps", "batch", "validate_every", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1")
    from daemon.training.loop import train  # late: torch

    # SIGTERM (systemd, kill, a batch scheduler) stops the run like Ctrl-C: with a checkpoint to resume from.
    try:
        with signal_handled(signal.SIGTERM, _interrupt):
            train(TrainSettings(args.data, args.out, args.steps, args.batch, args.learning_rate,
                                args.validate_every, args.checkpoint_every, args.seed, args.device, args.quiet))
    except TrainingError as error:
        raise CliError(str(error)) from None
    return EXIT_OK


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
