"""`neural-fill batch`: fill every image of a folder, in this process, on daemons or on a Ray cluster."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from daemon.batch import DEFAULT_TIMEOUT, BatchInterrupted, run_batch
from daemon.batch.cluster import ClusterError, run_cluster_batch
from daemon.files import prepare_folder
from daemon.service.endpoints import default_endpoint

from .errors import EXIT_CANCELLED, EXIT_FAILURE, EXIT_OK, EXIT_TERMINATED, PROG, CliError, Terminated
from .fill import check_weights
from .flags import add_preset_flags, add_quality_flag, add_security_flags, options_from_args, whole_number


def add_command(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch", help="fill every image of a folder, in this process, on daemons or on a Ray cluster",
        description="Fill each image of --images with its mask from --masks (NAME.png or NAME_mask.png, any "
                    "image extension) in this process, on the daemons given or on Ray, writing NAME.EXT into --out; "
                    "outputs already there are skipped, so a re-run resumes. Exit code 1 when any file failed.")
    batch.add_argument("--images", metavar="DIR", required=True, type=Path, help="folder of images")
    batch.add_argument("--masks", metavar="DIR", required=True, type=Path, help="folder of masks")
    batch.add_argument("-o", "--out", metavar="DIR", required=True, type=Path, help="folder for the results")
    batch.add_argument("--force", action="store_true", help="fill again the images whose output is already there")
    where = batch.add_mutually_exclusive_group()
    where.add_argument("--daemon", metavar="ENDPOINT", action="append", dest="daemons", nargs="?",
                       const=default_endpoint(),
                       help=f"fill on this daemon instead of in this process (repeatable: the daemons share the "
                            f"work; without ENDPOINT: {default_endpoint()})")
    where.add_argument("--ray", metavar="ADDRESS", nargs="?", const=LOCAL_RAY,
                       help="fill on Ray actors (the `cluster` extra): without ADDRESS on a local Ray instance "
                            "started for the batch, `auto` on the running cluster, ray://HOST:10001 through the "
                            "Ray client; every node must see the folders at the same paths (docs/cluster.md)")
    batch.add_argument("--workers", type=whole_number("a number of workers", 1), metavar="N",
                       help="with --ray: this many fill actors (default: one per GPU, or one per core of each CPU "
                            "node, as many as its memory holds)")
    add_preset_flags(batch, "set any option by name (repeatable; lists as 1,2,3 or 1/2/3)")
    batch.add_argument("--format", choices=["png", "jpeg", "tiff"], help="output format (default: the input's)")
    add_quality_flag(batch)
    batch.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                       help="seconds of silence after which a daemon is dropped")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    batch.add_argument("--json", action="store_true", help="the summary as one JSON object on stdout")
    add_security_flags(batch, "")
    batch.set_defaults(run=command_batch)


LOCAL_RAY = "local"  # --ray without an address


def command_batch(args: argparse.Namespace) -> int:
    for folder in (args.images, args.masks):
        if not folder.is_dir():
            raise CliError(f"{folder}: no such folder")
    if args.out.resolve() in (args.images.resolve(), args.masks.resolve()):
        raise CliError("--out must be a folder of its own: results written among the inputs would be taken for "
                       "inputs (or skipped as done) on the next run")
    if args.workers is not None and args.ray is None:
        raise CliError("--workers is for --ray: a daemon batch uses one job per daemon")
    options = options_from_args(args, on_daemon=bool(args.daemons))
    prepare_folder(args.out)  # a file there, or no right to write, is said before any network loads
    if not args.daemons and args.ray is None:
        check_weights()  # in this process: a missing VGG-19 is said once, before any file
    try:
        if args.ray is not None:
            report = run_cluster_batch(args.images, args.masks, args.out, options,
                                       address=None if args.ray == LOCAL_RAY else args.ray, workers=args.workers,
                                       output_format=args.format, quiet=args.quiet, force=args.force,
                                       quality=args.quality)
        else:
            report = run_batch(args.images, args.masks, args.out, args.daemons or [], options,
                               output_format=args.format, quality=args.quality, timeout=args.timeout,
                               quiet=args.quiet, force=args.force, curve=args.curve or None,
                               insecure_loopback=args.insecure_loopback, preset=args.preset)
    except ClusterError as error:
        raise CliError(str(error)) from None
    except BatchInterrupted as stopped:
        print(json.dumps(stopped.report.to_json()) if args.json else stopped.report.summary())
        terminated = isinstance(stopped.__cause__, Terminated)
        print(f"{PROG}: batch interrupted {'by SIGTERM' if terminated else '(Ctrl-C)'}: the "
              f"{stopped.report.count('done')} outputs written are kept in {args.out}; run the same command again "
              "to resume", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_CANCELLED
    print(json.dumps(report.to_json()) if args.json else report.summary())
    return EXIT_FAILURE if report.failed else EXIT_OK
