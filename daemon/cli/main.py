"""The `neural-fill` command's entry point: the parser of every command, and how a command's outcome becomes an
exit code. Each command is a module of this package; the libraries they call never import the CLI."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import NoReturn

from daemon.files import PrecisionWarning
from daemon.version import package_version

from . import batch, control, evaluate, fill, options, photos, serve, train, weights
from .errors import EXIT_BROKEN_PIPE, EXIT_FAILURE, PROG, CliError, Terminated, exit_code_for, report_error
from .signals import sigterm_raises


class _HelpFormatter(argparse.HelpFormatter):
    """Every flag's default in its help (where the help does not say it already), and its choices."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if action.choices is not None and action.metavar is not None and "[" not in text:
            text += f" [{'|'.join(map(str, action.choices))}]"
        shown = default is not None and default != [] and default is not argparse.SUPPRESS
        if shown and not isinstance(default, bool) and action.option_strings and "default" not in text:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage plus its own prefix; we want the same one-line form as every other error.
        raise CliError(f"{message} (see `{self.prog} --help`)")


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


@contextmanager
def warnings_on_stderr() -> Iterator[None]:
    """Warnings (16-bit to JPEG, dropped alpha...) as one `neural-fill: warning:` line each, each said once: a batch
    of a thousand 16-bit photos to JPEG says it once, not a thousand times. (The seen set is ours: warnings' own
    "default" registry is reset whenever any library touches the filters.)"""
    said: set[str] = set()

    def show(message, *_) -> None:
        if str(message) not in said:
            said.add(str(message))
            print(f"{PROG}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", PrecisionWarning)
        warnings.showwarning = show
        yield


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Fill holes in photos with multi-scale neural patch synthesis.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected failure")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    for command in (fill, weights, options, serve, control, batch, photos, evaluate, train):
        command.add_command(commands)
    return parser
