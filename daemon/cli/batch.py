"""`neural-fill batch`: fill every image of a folder on one or more daemons."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.service.endpoints import default_endpoint

from .errors import EXIT_CANCELLED, EXIT_FAILURE, EXIT_OK, EXIT_TERMINATED, PROG, CliError, Terminated
from .flags import add_preset_flags, add_security_flags, options_from_args


def add_command(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch", help="fill every image of a folder on one or more daemons",
        description="Fill each image of --images with its mask from --masks (NAME.png or NAME_mask.png, any "
                    "image extension) on the daemons given, writing NAME.EXT into --out; outputs already there "
                    "are skipped, so a re-run resumes. Exit code 1 when any file failed.")
    batch.add_argument("--images", metavar="DIR", required=True, type=Path, help="folder of images")
    batch.add_argument("--masks", metavar="DIR", required=True, type=Path, help="folder of masks")
    batch.add_argument("--out", metavar="DIR", required=True, type=Path, help="folder for the results")
    batch.add_argument("--daemon", metavar="ENDPOINT", action="append", dest="daemons",
                       help=f"a daemon to share the work (repeatable; default: {default_endpoint()})")
    add_preset_flags(batch, "set any option by name (repeatable)")
    batch.add_argument("--format", choices=["png", "jpeg", "tiff"], help="output format (default: the input's)")
    batch.add_argument("--timeout", type=float, default=30.0, metavar="S",
                       help="seconds of silence after which a daemon is dropped (default: 30)")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_security_flags(batch, "")
    batch.set_defaults(run=command_batch)


def command_batch(args: argparse.Namespace) -> int:
    from daemon.batch import BatchInterrupted, run_batch  # late: only this command needs it

    for folder in (args.images, args.masks):
        if not folder.is_dir():
            raise CliError(f"{folder}: no such folder")
    if args.out.resolve() in (args.images.resolve(), args.masks.resolve()):
        raise CliError("--out must be a folder of its own: results written among the inputs would be taken for "
                       "inputs (or skipped as done) on the next run")
    try:
        report = run_batch(args.images, args.masks, args.out, args.daemons or [default_endpoint()],
                           options_from_args(args), output_format=args.format, timeout=args.timeout,
                           quiet=args.quiet, curve=args.curve or None, insecure_loopback=args.insecure_loopback)
    except BatchInterrupted as stopped:
        print(stopped.report.summary())
        terminated = isinstance(stopped.__cause__, Terminated)
        print(f"{PROG}: batch interrupted {'by SIGTERM' if terminated else '(Ctrl-C)'}: the "
              f"{stopped.report.count('done')} outputs written are kept in {args.out}; run the same command again "
              "to resume", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_CANCELLED
    print(report.summary())
    return EXIT_FAILURE if report.failed else EXIT_OK
