"""A batch filled on a Ray cluster: a pool of fill actors, each loading VGG-19 and the content network once and
filling many files, fed one file at a time by this driver so that a file goes to whichever actor is free.

- Where: no address starts a local Ray instance (stopped at the end); `auto` joins the running cluster;
  `ray://HOST:10001` goes through the Ray client. Actors read and write with the project's own readers and writers,
  so every node must see the paths the driver gives: NFS, or the same local path on one machine (docs/cluster.md).
- How many: one actor per GPU when the cluster has GPUs; on CPU nodes, one per core, as many as the node's memory
  holds (ACTOR_MEMORY each). `workers` overrides the count (the cores are then shared out evenly).
- Faults: an actor whose process or node dies is restarted (MAX_RESTARTS) and Ray retries the file it had
  (MAX_TASK_RETRIES), on the restarted actor, which is on another node when the node died. Outputs are written
  atomically, and a retried file whose output an earlier attempt already wrote is not written again. An actor that
  cannot start (weights missing on its node) is dropped with the reason; its files go to the others.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from daemon.files import prepare_folder
from engine.options import FillOptions

from .pairs import (
    BatchInterrupted,
    OnOutcome,
    Outcome,
    Pair,
    Recorder,
    Report,
    failure_reason,
    fill_file,
    pair_files,
    sort_out,
)

CLUSTER_EXTRA = "pip install -e '.[cluster]'"
# Fills side by side beat threads in one fill: on 2 cores two 1-thread actors filled ~1.4x as many files as one
# 2-thread actor (docs/benchmarks.md), since one fill's serial parts leave cores idle. Memory bounds it instead.
CPU_THREADS_PER_ACTOR = 1
ACTOR_MEMORY = 1.5 * 2**30  # bytes per actor: ~0.8 GB with its networks loaded (measured), more on a big photo
MAX_RESTARTS = 3  # per actor: a node that keeps killing its actor loses it after this many
MAX_TASK_RETRIES = 2  # per file: attempts after the first when its actor died mid-fill
READY_TIMEOUT = 900.0  # seconds for an actor to start and load its networks (a cold node pulls torch from disk)
POLL = 0.2  # seconds between checks for finished files: the driver stays able to take Ctrl-C


class ClusterError(RuntimeError):
    """Ray is missing or cannot be reached; the message says what to do."""


def import_ray(address: str | None = None):
    """Ray, imported; for a ray:// address with a token at hand, told first (Ray reads it at import) to send the
    token: Ray 2.60 clusters require it by default, but its client sends it only when told to."""
    if address and address.startswith("ray://") and "RAY_AUTH_MODE" not in os.environ and _token_at_hand():
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs Ray, an optional extra: {CLUSTER_EXTRA}") from None
    return ray


@dataclass(frozen=True)
class WorkerPlan:
    count: int
    threads: int  # torch threads of each actor (0: the engine's own choice, as on a GPU)
    num_cpus: float  # what each actor reserves from Ray's scheduler
    num_gpus: float
    why: str


def plan_workers(nodes: list[tuple[int, float]], gpus: int, workers: int | None, threads: int = 0) -> WorkerPlan:
    """How many actors, and how big, from the alive nodes' (CPUs, memory bytes) and the cluster's GPUs.
    `threads`: the user's own thread count (options.threads), kept when given."""
    if gpus >= 1:
        count = workers or gpus
        return WorkerPlan(count, threads, 1, min(1.0, gpus / count),
                          f"{count} on {gpus} GPU{'s' * (gpus > 1)}" + ("" if workers else ": one per GPU"))
    cpu_nodes = [(cores, memory) for cores, memory in nodes if cores >= 1]
    cpus = [cores for cores, _ in cpu_nodes]
    if not cpus:
        raise ClusterError("the Ray cluster has no node with a CPU")
    if workers:
        share = threads or max(1, min(max(cpus), sum(cpus) // workers))
        return WorkerPlan(workers, share, share, 0, f"{workers} as asked, {share} thread{'s' * (share > 1)} each")
    size = threads or CPU_THREADS_PER_ACTOR
    count = sum(max(1, min(cores // size, int(memory // ACTOR_MEMORY))) for cores, memory in cpu_nodes)
    return WorkerPlan(count, size, size, 0,
                      f"{count} on {sum(cpus)} CPU cores of {len(cpus)} node{'s' * (len(cpus) > 1)}, "
                      f"{size} thread{'s' * (size > 1)} each")


class FillWorker:
    """One actor's state: the engine, loaded once. Made a Ray actor class by `actor_class()`."""

    def __init__(self, options: FillOptions, quality: int | None) -> None:
        from engine.pipeline import preload

        self.options, self.quality = options, quality
        preload(options)  # VGG-19 missing on this node: the actor fails to start, with the loader's message

    def where(self) -> dict:
        import ray

        return {"pid": os.getpid(), "node": ray.util.get_node_ip_address()}

    def fill(self, pair: Pair, before: tuple | None) -> tuple[str, str]:
        """("done" | "failed", reason). `before`: the output's (mtime, inode) when the batch began, or None."""
        from engine.pipeline import fill

        if _stat(pair.output) not in (None, before):
            return "done", ""  # an earlier attempt at this file wrote it, then its actor died: not written twice
        try:
            fill_file(pair, lambda image, mask: fill(image, mask, self.options), self.quality)
        except Exception as error:  # bad input, or one file's surprise: it must not stop the actor
            return "failed", failure_reason(error)
        return "done", ""


def actor_class(ray):
    return ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)(FillWorker)


def _stat(path: Path) -> tuple | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_mtime_ns, status.st_ino


def connect(ray, address: str | None) -> bool:
    """Join or start Ray; True when this call started it (and the batch must stop it)."""
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": "ERROR"}  # the bar and the summary speak, not Ray
    client = address is not None and address.startswith("ray://")
    try:
        if address is None:
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except Exception as error:
        where = "a local Ray instance" if address is None else f"the Ray cluster at {address}"
        hint = (" (a cluster with token authentication wants its token in ~/.ray/auth_token: `ray get-auth-token` "
                "on the head prints it)") if client else ""
        raise ClusterError(f"could not start or reach {where}: {error}{hint}") from error
    return True


def _token_at_hand() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").is_file())


def run_cluster_batch(images: Path, masks: Path, out: Path, options: FillOptions, address: str | None = None,
                      workers: int | None = None, output_format: str | None = None, quiet: bool = False,
                      on_outcome: OnOutcome | None = None, force: bool = False,
                      quality: int | None = None, on_ready: Callable[[list], None] | None = None) -> Report:
    """Fill every image of `images` on Ray actors; the rules are the other batches' (pairs.py). `on_ready` gets the
    actors' `where()` once they are up (tests kill one by its pid)."""
    prepare_folder(out)
    ray = import_ray(address)
    pairs = [Pair(p.image.resolve(), p.mask and p.mask.resolve(), p.output.resolve())
             for p in pair_files(images, masks, out, output_format)]
    report = Report()
    record = Recorder(report, len(pairs), quiet, on_outcome)
    bar = record.bar

    todo = sort_out(pairs, masks, force, record)
    before = {pair.output: _stat(pair.output) for pair in todo}
    started = connect(ray, address) if todo else False
    actors: dict = {}
    in_flight: dict = {}
    pending = list(reversed(todo))  # popped from the end: in name order
    try:
        if todo:
            actors = start_actors(ray, options, quality, workers, report, bar)
            if on_ready is not None:
                on_ready([ray.get(actor.where.remote()) for actor in actors])
        while pending or in_flight:
            if not actors:  # (nothing is in flight then: a dropped actor's job was taken back first)
                for pair in reversed(pending):
                    record(Outcome(pair, "failed", "no Ray worker left to fill it"))
                pending.clear()
                break
            for actor in [a for a in actors if a not in {job[0] for job in in_flight.values()}]:
                if pending:
                    pair = pending.pop()
                    in_flight[actor.fill.remote(pair, before[pair.output])] = (actor, pair)
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL)
            for ref in done:
                actor, pair = in_flight.pop(ref)
                name = actors[actor]
                try:
                    status, reason = ray.get(ref)
                except ray.exceptions.RayActorError as error:
                    record(Outcome(pair, "failed", f"its Ray worker died {MAX_TASK_RETRIES + 1} times while filling "
                                                   f"it: {_said(error)}", name))
                    if not _alive(ray, actor):
                        report.dropped[name] = f"died more than its {MAX_RESTARTS} restarts allow"
                        bar.write(f"{name} dropped: {report.dropped[name]}")
                        del actors[actor]
                    continue
                record(Outcome(pair, status, reason, name))
    except Exception:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        raise
    except BaseException as interruption:  # Ctrl-C, or SIGTERM as the CLI raises it (not an Exception)
        for actor in actors:
            ray.kill(actor, no_restart=True)  # the fills in flight stop; their outputs were never renamed in
        report.interrupted = True
        report.outcomes += [Outcome(pair, "cancelled", "cancelled", actors.get(actor))
                            for actor, pair in in_flight.values()]
        report.not_started = list(reversed(pending))
        raise BatchInterrupted(report) from interruption
    finally:
        bar.close()
        _sweep(todo)
        if started:
            ray.shutdown()
    return report


def start_actors(ray, options: FillOptions, quality: int | None, workers: int | None, report: Report,
                 bar: tqdm) -> dict:
    """The pool, started and loaded: {actor: its name in the report}. An actor that cannot start is dropped."""
    alive = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    nodes = [(int(found.get("CPU", 0)), float(found.get("memory", 0))) for found in alive]
    plan = plan_workers(nodes, int(sum(found.get("GPU", 0) for found in alive)), workers, options.threads)
    bar.write(f"Ray: {plan.why}")
    worker_options = replace(options, threads=plan.threads) if plan.threads else options
    remote = actor_class(ray).options(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus)
    starting = [remote.remote(worker_options, quality) for _ in range(plan.count)]
    actors = {}
    deadline = time.monotonic() + READY_TIMEOUT
    for number, actor in enumerate(starting, 1):
        try:
            where = ray.get(actor.where.remote(), timeout=max(1.0, deadline - time.monotonic()))
        except Exception as error:  # noqa: BLE001 - any failure to start is this actor's, reported
            report.dropped[f"ray worker {number}"] = _said(error)
            bar.write(f"ray worker {number} dropped: {_said(error)}")
            ray.kill(actor, no_restart=True)
            continue
        actors[actor] = f"ray worker {number} ({where['node']})"
        report.by_daemon[actors[actor]] = 0
    return actors


def _alive(ray, actor) -> bool:
    """Whether an actor answers (after a restart, which reloads its networks), or is dead for good."""
    try:
        ray.get(actor.where.remote(), timeout=READY_TIMEOUT)
    except Exception:  # noqa: BLE001 - dead, or not back in time: either way not one to give files to
        return False
    return True


def _sweep(pairs: list[Pair]) -> None:
    """Remove the temporary files of writes a killed actor left behind (engine/atomic.py names them)."""
    for pair in pairs:
        for leftover in pair.output.parent.glob(f".{pair.output.name}.*.part"):
            leftover.unlink(missing_ok=True)


def _said(error: BaseException) -> str:
    """A Ray error in one line: its last, where the cause is named."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
