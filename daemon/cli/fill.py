"""`neural-fill fill`: fill the hole in an image file, in this process or on a running daemon."""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from daemon.files import check_writable, has_alpha, read_image, write_image
from daemon.masks import read_mask
from daemon.service.client import Client
from daemon.service.endpoints import default_endpoint
from engine.errors import FETCH_COMMAND, Cancelled, MaskError
from engine.options import FillOptions, get_preset
from engine.progress import CancelCheck, Progress, ProgressCallback

from .errors import EXIT_FAILURE, EXIT_OK, PROG, CliError, daemon_errors
from .flags import (
    add_option_flags,
    add_preset_flags,
    add_quality_flag,
    add_security_flags,
    format_value,
    options_from_args,
)
from .progress import ProgressBar
from .signals import ctrl_c_cancels


def add_command(commands: argparse._SubParsersAction) -> None:
    fill = commands.add_parser(
        "fill", help="fill the hole of an image file and write the result",
        description="Fill the hole given by MASK (white = hole, black = keep, grey = blend) or, without --mask, "
                    "by the image's transparency. Option values come from the preset, then the flags below.",
    )
    fill.add_argument("image", metavar="IMAGE", help="PNG, JPEG or TIFF, 8 or 16 bits")
    fill.add_argument("-m", "--mask", metavar="MASK", help="mask image of the same size (default: IMAGE's alpha)")
    sampling = fill.add_mutually_exclusive_group()
    sampling.add_argument("--source-mask", metavar="FILE",
                          help="where the fill may copy from: white = may, black = never (default: everywhere)")
    sampling.add_argument("--exclude-mask", metavar="FILE",
                          help="where the fill must never copy from: white = never (another person, a sign)")
    fill.add_argument("-o", "--out", "--output", dest="output", metavar="OUT", required=True,
                      help="result: .png, .jpg/.jpeg or .tif/.tiff")
    add_quality_flag(fill)
    add_preset_flags(fill, "set any option by name (repeatable; lists as 1,2,3 or 1/2/3); applied after the flags "
                           "below")
    fill.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    fill.add_argument("-v", "--verbose", action="store_true",
                      help="print the options used, the time taken and the texture match of the fill")
    fill.add_argument("--json", action="store_true",
                      help="print one JSON object on stdout when done: the output, the time, the texture match, the "
                           "options")
    fill.add_argument("--daemon", metavar="ENDPOINT", nargs="?", const="",
                      help=f"fill on a running daemon (started with `{PROG} daemon`) instead of in this process: at "
                           f"ENDPOINT, or at the default {default_endpoint()}")
    add_security_flags(fill, "with --daemon: ")
    add_option_flags(fill)
    fill.set_defaults(run=command_fill)


def command_fill(args: argparse.Namespace) -> int:
    # Every check that can fail is done before the slow work, so a mistake costs seconds, not minutes.
    check_writable(args.output)
    options = options_from_args(args, on_daemon=args.daemon is not None)
    # The networks load while the files are read and checked (a second or two of a fresh process).
    loading = preload_in_background(options) if args.daemon is None else None
    image = read_image(args.image)
    mask = read_mask(args.mask, image)
    check_mask_usable(mask, args.mask or args.image)
    source = read_source(args, image)
    if args.daemon is None:
        check_weights()  # a daemon has its own
    runner = run_fill if args.daemon is None else daemon_runner(
        args.daemon, args.curve or None, args.insecure_loopback,
        on_hello=(lambda hello: print_daemon_compute(hello, options)) if args.verbose else None, preset=args.preset)
    if source is not None:
        runner = partial(runner, source=source)
    if args.verbose:
        print_options(args.preset, options)
        if args.daemon is None:
            print_compute(options)
    with ctrl_c_cancels() as cancel, ProgressBar(enabled=False if args.quiet else None) as progress:
        if loading is not None:  # on the bar from the first moment: the first fill of a process waits for it
            progress(Progress(stage="load", fraction=0.0))
            while not loading.wait(0.1):
                if cancel():
                    raise Cancelled("cancelled while loading")
        started = time.monotonic()
        result = fill_image(image, mask, options, mask_from_alpha=args.mask is None, progress=progress,
                            cancel=cancel, runner=runner)
        seconds = time.monotonic() - started
    write_image(args.output, result, like=args.image, quality=args.quality, like_pixels=image)
    if not args.quiet and not sys.stderr.isatty():  # a log has no progress bar to show that it ended
        print(f"{PROG}: wrote {args.output}", file=sys.stderr)
    if args.verbose or args.json:
        facts = fill_facts(result, mask, seconds, where=args.daemon or "this process")
        if args.verbose:
            print_fill_report(facts)
        if args.json:
            print(json.dumps({"output": str(args.output), **facts, "preset": args.preset,
                              "options": options.to_dict()}))
    return EXIT_OK


def preload_in_background(options: FillOptions) -> threading.Event:
    """Load torch and the networks in a thread while the files are read; the event is set once the fill can start.
    The compiled pixel search loads after it, beside the fill's first stages (whose torch work leaves the
    interpreter free), and the fill waits for it only if it gets there first."""
    ready = threading.Event()

    def load() -> None:
        # Importing torch makes about a million objects, and the collector would walk them all several times
        # (0.2 s); frozen afterwards, later collections skip them.
        gc.disable()
        try:
            from engine.pipeline import preload  # late: loads torch
            from engine.pixel_search import compile_now

            preload(options, kernels=False)
            ready.set()
            compile_now()
        except Exception:  # noqa: BLE001, S110 - the fill loads again and reports what fails, with its message
            pass
        finally:
            ready.set()  # also when loading failed: the fill then says why
            gc.freeze()
            gc.enable()

    threading.Thread(target=load, name="neural-fill-preload", daemon=True).start()
    return ready


def print_options(preset: str, options: FillOptions) -> None:
    """The options the fill runs with, the ones that differ from the preset marked with `*`."""
    base = get_preset(preset).to_dict()
    cells = [f"{name}={format_value(value)}" + ("*" if value != base[name] else "")
             for name, value in options.to_dict().items()]
    text = textwrap.fill(" ".join(cells), width=100, initial_indent="  ", subsequent_indent="  ")
    print(f"{PROG}: preset {preset}, options (* = changed from the preset):\n{text}", file=sys.stderr)


def print_compute(options: FillOptions) -> None:
    from engine.device import describe_compute, resolve_device, resolve_precision  # late: loads torch

    device = resolve_device(options.device)
    compute = describe_compute(device, resolve_precision(options.precision, device), options.threads)
    print(f"{PROG}: computing on {compute}", file=sys.stderr)


def print_daemon_compute(hello: dict[str, Any], options: FillOptions) -> None:
    precision = hello.get("precision", "?") if options.precision == "auto" else options.precision
    print(f"{PROG}: computing in the daemon, on its {hello.get('device', '?')}, precision {precision}",
          file=sys.stderr)


def fill_facts(result: np.ndarray, mask: np.ndarray, seconds: float, where: str) -> dict[str, Any]:
    """What --verbose and --json tell about a fill: its size, time, where it ran, its texture match and realism
    (computed only for them: the realism takes a few hundred ms)."""
    from daemon.evaluation.metrics import texture_match  # late: scipy
    from daemon.evaluation.realism import realism

    hole = mask > 0
    colour = result if result.ndim == 2 else result[..., :3] if result.shape[2] >= 3 else result[..., 0]  # no alpha
    match = texture_match(colour, hole)
    # The realism compares colour patches on the 0..255 scale its floor is set in.
    rgb = np.repeat(colour[..., None], 3, axis=2) if colour.ndim == 2 else colour
    real = realism(rgb.astype(np.float32) * (255 / np.iinfo(rgb.dtype).max if rgb.dtype.kind == "u" else 255), hole)
    return {"filled_pixels": int(hole.sum()), "seconds": round(seconds, 3), "where": where,
            "texture_match": None if math.isnan(match) else round(float(match), 3),
            "realism": None if math.isnan(real) else round(float(real), 3)}


def print_fill_report(facts: dict[str, Any]) -> None:
    match = facts["texture_match"]
    verdict = ("no textured known pixels around the hole to compare with" if match is None else
               "as textured as its surroundings" if 0.7 <= match <= 1.3 else
               "smoother than its surroundings" if match < 0.7 else "busier than its surroundings")
    print(f"{PROG}: filled {facts['filled_pixels']} px in {facts['seconds']:.2f} s ({facts['where']})",
          file=sys.stderr)
    shown = "n/a" if match is None else f"{match:.2f}"
    print(f"{PROG}: texture match {shown} (gradient energy in the hole over the ring of known pixels around "
          f"it; about 1 matches): {verdict}", file=sys.stderr)
    real = facts["realism"]
    print(f"{PROG}: realism {'n/a' if real is None else f'{real:.2f}'} (how far the fill's 8x8 patches are from "
          "the nearest known patch, over how far known patches are from each other; about 1 is as real as the "
          "photo, ghosts, flat blocks and seams score more; lower is better)", file=sys.stderr)


def check_mask_usable(mask: np.ndarray, source: str) -> None:
    if not (mask > 0).any():
        raise MaskError(f"{source}: the mask selects nothing (paint the hole white, or make it transparent in "
                        "the image and give no --mask)")
    if not (mask == 0).any():
        raise MaskError(f"{source}: the mask covers the whole image: nothing left to copy from")


def weights_file() -> Path:
    from engine.weights import vgg19_path  # late: loads torch

    return vgg19_path()


def check_weights() -> None:
    path = weights_file()
    if not path.is_file():
        raise CliError(f"the VGG-19 weights are missing (looked for {path}): run `{FETCH_COMMAND}` first",
                       EXIT_FAILURE)


def read_source(args: argparse.Namespace, image: np.ndarray) -> np.ndarray | None:
    """Where the fill may copy from (bool HxW), from --source-mask or --exclude-mask; None: everywhere."""
    path = args.source_mask or args.exclude_mask
    if path is None:
        return None
    marked = read_mask(path, image) > 0.5
    return marked if args.source_mask else ~marked


def run_fill(image: np.ndarray, mask: np.ndarray, options: FillOptions, progress: ProgressCallback,
             cancel: CancelCheck, source: np.ndarray | None = None) -> np.ndarray:
    """The engine's fill (tests put a fake here: they are about files and flags, not the method)."""
    from engine import fill  # late: loads torch and the network code

    return fill(image, mask, options, progress=progress, cancel=cancel, source=source)


Runner = Callable[[np.ndarray, np.ndarray, FillOptions, ProgressCallback, CancelCheck], np.ndarray]


def daemon_runner(endpoint: str | None, curve: bool | None = None, insecure_loopback: bool = False,
                  on_hello: Callable[[dict[str, Any]], None] | None = None, preset: str = "default") -> Runner:
    """A runner that sends the fill to the daemon at `endpoint` (None: the default), with the same exit codes as
    in-process; `on_hello` hears the daemon's hello first (its device and precision). The options go whole; `preset`
    is the one they came from, which the daemon's log names."""
    endpoint = endpoint or default_endpoint()

    def run(image: np.ndarray, mask: np.ndarray, options: FillOptions, progress: ProgressCallback,
            cancel: CancelCheck, source: np.ndarray | None = None) -> np.ndarray:
        with daemon_errors(endpoint), Client(endpoint, curve=curve, insecure_loopback=insecure_loopback) as client:
            if on_hello is not None:
                on_hello(client.hello())
            return client.fill(image, mask, preset, options=options, progress=progress, cancel=cancel,
                               source=source)

    return run


def fill_image(image: np.ndarray, mask: np.ndarray, options: FillOptions, *, mask_from_alpha: bool,
               progress: ProgressCallback, cancel: CancelCheck, runner: Runner | None = None) -> np.ndarray:
    """Fill `image`; when its transparency is the hole, fill the colour alone and make the result opaque."""
    run = runner or run_fill
    if not (mask_from_alpha and has_alpha(image)):
        return run(image, mask, options, progress, cancel)
    colour = image[..., :-1]
    filled = run(colour[..., 0] if colour.shape[2] == 1 else colour, mask, options, progress, cancel)
    filled = filled.reshape(colour.shape)
    opaque = np.full(image.shape[:2] + (1,), np.iinfo(image.dtype).max, dtype=image.dtype)
    return np.concatenate([filled, opaque], axis=2)
