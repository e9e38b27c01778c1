"""`neural-fill status` and `neural-fill stop`: ask a running daemon what it is doing, or ask it to stop."""

from __future__ import annotations

import argparse
import json
from typing import Any

from daemon.service.client import Client
from daemon.service.endpoints import default_endpoint

from .errors import EXIT_OK, daemon_errors
from .flags import add_security_flags

ANSWER_TIMEOUT = 5.0  # a daemon answers these at once, even mid-fill


def add_command(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status", help="what a running daemon is doing",
                                 description="Ask the daemon its version, device and precision, the job it runs "
                                             "and how many wait. Exit code 1 when no daemon answers.")
    stop = commands.add_parser("stop", help="stop a running daemon (its running job is cancelled)",
                               description="Ask the daemon to stop: over ipc:// (the default) or CURVE, as its own "
                                           "user; a daemon on --insecure-loopback TCP takes SIGTERM only.")
    for parser, run in ((status, command_status), (stop, command_stop)):
        parser.add_argument("--daemon", metavar="ENDPOINT", default=None,
                            help=f"the daemon's endpoint (default: {default_endpoint()})")
        add_security_flags(parser, "")
        parser.set_defaults(run=run)
    status.add_argument("--json", action="store_true", help="one JSON object on stdout, for scripts")


def command_status(args: argparse.Namespace) -> int:
    endpoint = args.daemon or default_endpoint()
    answer = ask(args, endpoint, lambda client: {**client.hello(), **client.status()})
    if args.json:
        print(json.dumps({"endpoint": endpoint, **{k: v for k, v in answer.items() if k not in ("op", "v")}}))
        return EXIT_OK
    running = f"running job {answer['running']}" if answer.get("running") else "idle"
    print(f"daemon at {endpoint}: neural-fill {answer.get('version', '?')} (protocol {answer.get('protocol', '?')}), "
          f"device {answer.get('device', '?')}, precision {answer.get('precision', '?')}; {running}, "
          f"{answer.get('queued', 0)} queued, {answer.get('uploading', 0)} uploading")
    return EXIT_OK


def command_stop(args: argparse.Namespace) -> int:
    endpoint = args.daemon or default_endpoint()
    ask(args, endpoint, lambda client: client.shutdown())
    print(f"daemon at {endpoint}: stopped")
    return EXIT_OK


def ask(args: argparse.Namespace, endpoint: str, question: Any) -> Any:
    with daemon_errors(endpoint), Client(endpoint, timeout=ANSWER_TIMEOUT, curve=args.curve or None,
                                         insecure_loopback=args.insecure_loopback) as client:
        return question(client)
