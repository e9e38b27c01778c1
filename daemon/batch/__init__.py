"""Batch fills of a folder: in this process, on ZeroMQ daemons (local.py), or on a Ray cluster (cluster.py), with
one pairing rule, one report and one way of filling a file (pairs.py)."""

from .local import DEFAULT_TIMEOUT, HELLO_TIMEOUT, InProcess, run_batch
from .pairs import (
    FORMAT_SUFFIXES,
    IN_PROCESS,
    MASK_SUFFIX,
    BatchInterrupted,
    Outcome,
    Pair,
    Report,
    find_mask,
    pair_files,
)

__all__ = ["DEFAULT_TIMEOUT", "FORMAT_SUFFIXES", "HELLO_TIMEOUT", "IN_PROCESS", "MASK_SUFFIX", "BatchInterrupted",
           "InProcess", "Outcome", "Pair", "Report", "find_mask", "pair_files", "run_batch"]
