"""Exit codes and how a failure is told: one `neural-fill: error:` line and the code that says what kind it was.

Exit codes: 0 done, 2 bad input (nothing was written), 1 runtime failure, 130 cancelled with Ctrl-C, 143 stopped
by SIGTERM, 141 when the reader of its output went away (`| head`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from daemon.files import ImageFileError
from daemon.service.client import DaemonError, DaemonUnavailable
from daemon.service.keys import KeysError
from daemon.service.protocol import ErrorCode
from engine.errors import Cancelled, FillError, WeightsError

PROG = "neural-fill"
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_TERMINATED = 0, 1, 2, 130, 143
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command whose reader went away
# Daemon error codes that mean "your input", as the engine's FillError does in-process.
BAD_INPUT_CODES = (ErrorCode.BAD_FIELD, ErrorCode.SIZE_MISMATCH, ErrorCode.TOO_LARGE, ErrorCode.BAD_INPUT)


class Terminated(BaseException):  # noqa: N818 - an outcome; a BaseException so that no `except Exception` eats it
    """SIGTERM: raised where the program is, so a half-written output's temporary file is removed on the way out."""


class CliError(Exception):
    """A problem reported as one line, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
def daemon_errors(endpoint: str) -> Iterator[None]:
    """A daemon's refusals, its silence and missing keys as one-line errors, with the exit codes the in-process
    command gives for the same causes."""
    try:
        yield
    except DaemonError as error:
        exit_code = EXIT_BAD_INPUT if error.code in BAD_INPUT_CODES else EXIT_FAILURE
        raise CliError(f"the daemon at {endpoint}: {error}", exit_code) from None
    except (DaemonUnavailable, KeysError) as error:
        raise CliError(str(error), EXIT_FAILURE) from None
