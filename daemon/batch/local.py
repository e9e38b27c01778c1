"""A batch filled in this process or on one or more ZeroMQ daemons.

With no daemon given, the engine runs in this process, loaded once and warm for every file. With daemons, one thread
per daemon, each with its own Client and one job in flight, takes the next file from a shared list, so a job goes to
whichever daemon is free. A daemon that does not answer its hello within HELLO_TIMEOUT, or stops answering later
(DaemonUnavailable), is dropped and its job goes back on the list for the others; an error about the input
(bad_input...) is that file's failure.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from daemon.files import prepare_folder
from daemon.service.client import Client, DaemonError, DaemonUnavailable
from daemon.service.link import Closing
from daemon.service.protocol import ErrorCode
from engine.errors import Cancelled, WeightsError
from engine.options import FillOptions

from .pairs import (
    IN_PROCESS,
    BatchInterrupted,
    OnOutcome,
    Outcome,
    Pair,
    Recorder,
    Report,
    failure_reason,
    fill_file,
    pair_files,
    shown_name,
    sort_out,
)

DEFAULT_TIMEOUT = 30.0
HELLO_TIMEOUT = 5.0  # a daemon answers hello at once, even mid-fill: one that is silent this long is not there
QUEUE_FULL_PAUSE = 1.0  # seconds before a daemon whose queue was full is offered a job again


class WorkList:
    """Files not yet filled, shared by the daemon threads. A thread waits while others have jobs in flight,
    since a job of a failing daemon may come back."""

    def __init__(self, pairs: list[Pair]) -> None:
        self._pending = deque(pairs)
        self._in_flight = 0
        self._changed = threading.Condition()
        self.stopped = threading.Event()

    def take(self) -> Pair | None:
        with self._changed:
            while not self._pending and self._in_flight and not self.stopped.is_set():
                self._changed.wait(0.5)
            if not self._pending or self.stopped.is_set():
                return None
            self._in_flight += 1
            return self._pending.popleft()

    def finished(self, give_back: Pair | None = None) -> None:
        with self._changed:
            self._in_flight -= 1
            if give_back is not None:
                self._pending.appendleft(give_back)
            self._changed.notify_all()

    def left(self) -> list[Pair]:
        with self._changed:
            left, self._pending = list(self._pending), deque()
            return left



class InProcess(Closing):
    """The engine in this process, with the interface of a daemon's Client that a batch uses."""

    def __init__(self, options: FillOptions) -> None:
        self._options = options

    def hello(self, timeout: float | None = None) -> None:
        """Loads the networks once (VGG-19 missing: this filler is dropped with the loader's message)."""
        from engine.pipeline import preload  # late: loads torch

        preload(self._options)

    def fill(self, image, mask, preset: str, options: FillOptions, cancel) -> np.ndarray:
        from engine.pipeline import fill  # `preset` is only a daemon log's: the options are whole

        return fill(image, mask, options, cancel=cancel)

    def close(self) -> None:
        pass  # the networks stay loaded: they are this process's


Filler = Client | InProcess


def serve_from(name: str, open_filler: Callable[[], Filler], work: WorkList, fill_one: Callable[[Filler, Pair], None],
               record: OnOutcome, drop: Callable[[str, str], None], hello_timeout: float = HELLO_TIMEOUT) -> None:
    """One filler's thread (a daemon's, or this process's): fill files from `work` until it is empty or the
    filler fails."""
    try:
        filler = open_filler()  # a socket another user could be behind is refused here (UnsafeSocket)
    except DaemonUnavailable as error:
        drop(name, str(error))
        return
    with filler:
        try:
            filler.hello(timeout=hello_timeout)  # a daemon that is not there is dropped before it is given a job
        except (DaemonUnavailable, DaemonError, WeightsError) as error:
            drop(name, str(error))
            return
        while (pair := work.take()) is not None:
            try:
                fill_one(filler, pair)
            except DaemonUnavailable as error:
                work.finished(give_back=pair)
                drop(name, str(error))
                return
            except Cancelled:
                work.finished()
                record(Outcome(pair, "cancelled", "cancelled", name))
                return
            except DaemonError as error:
                if error.code == ErrorCode.STOPPED:  # the daemon is going away: its job goes to the others
                    work.finished(give_back=pair)
                    drop(name, str(error))
                    return
                if error.code == ErrorCode.QUEUE_FULL:  # busy with other clients' jobs: later, or elsewhere
                    work.finished(give_back=pair)
                    time.sleep(QUEUE_FULL_PAUSE)
                else:  # bad_input, too_large, internal...: this file's failure; the daemon goes on serving
                    work.finished()
                    record(Outcome(pair, "failed", str(error), name))
            except Exception as error:  # bad input, or one file's surprise: it must not stop the others
                work.finished()
                record(Outcome(pair, "failed", failure_reason(error), name))
            else:
                work.finished()
                record(Outcome(pair, "done", daemon=name))


# ------------------------------------------------------------------------------------------------ the batch


def run_batch(images: Path, masks: Path, out: Path, endpoints: list[str], options: FillOptions,
              output_format: str | None = None, timeout: float = DEFAULT_TIMEOUT, quiet: bool = False,
              on_outcome: OnOutcome | None = None, curve: bool | None = None,
              insecure_loopback: bool = False, force: bool = False, quality: int | None = None,
              preset: str = "default") -> Report:
    """Fill every image of `images` on the daemons at `endpoints`, or in this process when there are none; see the
    module docstring for the rules. `on_outcome` is called (from a filler's thread) after each file. `quality`: as
    write_image's. `preset`: the one `options` came from, which the daemons' logs name."""
    prepare_folder(out)
    names = list(dict.fromkeys(endpoints)) or [IN_PROCESS]
    report = Report(by_daemon={name: 0 for name in names})
    lock = threading.Lock()
    pairs = pair_files(images, masks, out, output_format)
    record = Recorder(report, len(pairs), quiet, on_outcome)
    bar = record.bar

    def drop(name: str, why: str) -> None:
        with lock:
            report.dropped[name] = why
        bar.write(f"{shown_name(name)} dropped: {why}")

    def fill_one(filler: Filler, pair: Pair) -> None:
        fill_file(pair, lambda image, mask: filler.fill(image, mask, preset, options=options,
                                                        cancel=work.stopped.is_set), quality)

    def opener(name: str) -> Callable[[], Filler]:
        if name == IN_PROCESS:
            return lambda: InProcess(options)
        return lambda: Client(name, timeout=timeout, curve=curve, insecure_loopback=insecure_loopback)

    todo = sort_out(pairs, masks, force, record)
    work = WorkList(todo)
    hello_timeout = min(timeout, HELLO_TIMEOUT)
    threads = [threading.Thread(target=serve_from, args=(name, opener(name), work, fill_one, record, drop,
                                                            hello_timeout),
                                name=f"batch {name}", daemon=True) for name in names]
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.1)  # not join(): the main thread must stay able to take Ctrl-C
    except BaseException as interruption:  # Ctrl-C, or SIGTERM as the CLI raises it
        work.stopped.set()  # in-flight fills are cancelled on their daemons
        for thread in threads:
            thread.join()
        bar.close()
        report.interrupted, report.not_started = True, work.left()
        raise BatchInterrupted(report) from interruption
    for pair in work.left():
        record(Outcome(pair, "failed", "no daemon left to fill it" if endpoints else "this process could not fill it"))
    bar.close()
    return report
