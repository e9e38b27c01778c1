"""`neural-fill daemon`: keep the networks loaded and serve fills over ZeroMQ, in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from daemon.service.endpoints import default_endpoint
from daemon.service.server import DEFAULT_MAX_PIXELS, DEFAULT_MAX_QUEUE, Daemon, DaemonConfigError
from engine.options import DEVICES

from .errors import EXIT_OK, CliError
from .signals import signal_handled


def add_command(commands: argparse._SubParsersAction) -> None:
    daemon = commands.add_parser("daemon", help="run the fill daemon in the foreground (Ctrl-C or SIGTERM stops it)",
                                 description="Keep the networks loaded and serve fills over ZeroMQ.")
    daemon.add_argument("--bind", metavar="ENDPOINT",
                        help=f"where to listen: an ipc:// socket in a folder only you can enter (0700), or tcp:// with "
                             f"CURVE (default: {default_endpoint()})")
    daemon.add_argument("--curve", action="store_true",
                        help="CURVE on an ipc:// socket too (it is always on for tcp://): only clients whose public "
                             "key is in the keys dir's clients/ folder get in (keys are made on the first start in "
                             "the user's config dir, or $NEURAL_FILL_CONFIG_DIR)")
    daemon.add_argument("--insecure-loopback", action="store_true",
                        help="plain tcp://127.0.0.1 without CURVE: every program of every user of this machine may "
                             "then send work and could crash the daemon (docs/security.md)")
    daemon.add_argument("--device", choices=DEVICES, default="auto", help="compute device")
    daemon.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE, metavar="N",
                        help="jobs that may wait")
    daemon.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="largest image, in pixels, the daemon accepts")
    daemon.set_defaults(run=command_daemon)


def command_daemon(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    try:
        serve(args.bind, device=args.device, max_queue=args.max_queue, max_pixels=args.max_pixels,
              curve=args.curve or None, insecure_loopback=args.insecure_loopback)
    except DaemonConfigError as error:
        raise CliError(str(error)) from None
    return EXIT_OK


def serve(endpoint: str | None = None, device: str = "auto", max_queue: int = DEFAULT_MAX_QUEUE,
          max_pixels: int = DEFAULT_MAX_PIXELS, allow_shutdown: bool = False, curve: bool | None = None,
          keys_dir: Path | None = None, insecure_loopback: bool = False) -> None:
    """Run a daemon in the foreground until SIGTERM or SIGINT (the running job is cancelled, sockets closed)."""
    daemon = Daemon(endpoint, device=device, max_queue=max_queue, max_pixels=max_pixels,
                    allow_shutdown=allow_shutdown, curve=curve, keys_dir=keys_dir,
                    insecure_loopback=insecure_loopback)
    daemon.start()

    def stop(signum: int, frame: object) -> None:
        daemon.stop()

    with signal_handled(signal.SIGTERM, stop), signal_handled(signal.SIGINT, stop):
        daemon.run()
