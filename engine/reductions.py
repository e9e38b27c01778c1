"""Sums that come out the same to the bit on any number of CPU threads.

Torch splits a whole-tensor sum (and BLAS a dot product) among its threads and adds the threads' partial sums, so
the rounding depends on how many there are. Here the tensor is summed in rows of a fixed length, each row by one
thread, then the rows' sums: the grouping is the tensor's own, whatever the thread count.
"""

from __future__ import annotations

import torch

ROW = 8192  # elements per row: below torch's grain (32768), so the sum of the rows runs on one thread


def total(x: torch.Tensor) -> torch.Tensor:
    """The sum of all of x's elements (a 0-d tensor, differentiable)."""
    flat = x.reshape(-1)
    count = flat.numel()
    if count <= ROW:
        return flat.sum()
    rows = count // ROW
    # The whole rows as a view (no copy: the Poisson solve takes two of these sums per step), the rest apart.
    sums = flat[:rows * ROW].view(rows, ROW).sum(1)
    return torch.cat([sums, flat[rows * ROW:].sum().reshape(1)]).sum()
