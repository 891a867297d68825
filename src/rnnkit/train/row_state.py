"""A stateful loss's per-row state (a carried truncated-BPTT hidden state) across ranks.

A data-parallel rank carries state for its own rows of every global batch only (see
:mod:`rnnkit.train.distributed`). A checkpoint stores the state of *all* rows, in global row
order, as the one tensor set a single-process run would write, so a run resumes from it in any
number of processes: :func:`gather_rows` builds it on rank 0 at save time and
:func:`rows_of_rank` cuts each rank's rows back out of it on resume.

A loss opts in by declaring ``state_row_dim``: the dimension of every tensor of its
``state_dict()`` that indexes the batch rows (``1`` for ``(layers, batch, hidden)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist

from rnnkit.train.distributed import held_rows, rank, world_size

RowState = dict[str, torch.Tensor]
"""Tensor name -> tensor with the batch rows along the loss's ``state_row_dim``."""


def state_row_dim(loss_fn: Any) -> int | None:
    """The loss's declared ``state_row_dim`` (``None`` when it declares none)."""
    row_dim = getattr(loss_fn, "state_row_dim", None)
    if row_dim is not None and (not isinstance(row_dim, int) or isinstance(row_dim, bool)
                                or row_dim < 0):
        raise TypeError(
            f"loss_fn.state_row_dim: expected None or an integer >= 0, got {row_dim!r}"
        )
    return row_dim


def stored_rows(state: Mapping[str, torch.Tensor], row_dim: int) -> int | None:
    """The number of rows every tensor of ``state`` holds along ``row_dim``; ``None`` when the
    tensors disagree or lack that dimension."""
    counts = {tensor.shape[row_dim] if tensor.dim() > row_dim else -1 for tensor in state.values()}
    return counts.pop() if len(counts) == 1 and -1 not in counts else None


# ------------------------------------------------------------------------------- save: gather
def gather_rows(state: Mapping[str, torch.Tensor], row_dim: int, rows: int) -> RowState | None:
    """Collective (every rank must call it): rank 0 gets each tensor's first ``rows`` rows of
    every rank, concatenated along ``row_dim`` in rank order (= global row order); the other
    ranks get ``None``.

    ``rows`` is this rank's share of the latest global batch (0 for a rank that held a weight-0
    copy of a row). Shares may differ by one row: tensors are padded to the largest share for
    the all-gather, then trimmed. Ranks whose states differ in names, dtype or other dimensions
    (or hold fewer than ``rows`` rows) give ``{}``: nothing to carry, a resume starts afresh.
    """
    layout = {name: (tuple(tensor.shape), str(tensor.dtype)) for name, tensor in state.items()}
    layouts: list[Any] = [None] * world_size()
    dist.all_gather_object(layouts, (layout, rows))
    if not _same_layout(layouts, row_dim):
        return {} if rank() == 0 else None
    shares = [share for _, share in layouts]
    gathered = {
        name: _all_gather_padded(state[name].narrow(row_dim, 0, rows), row_dim, shares)
        for name in sorted(layout)  # the same order on every rank
    }
    return gathered if rank() == 0 else None


def _same_layout(layouts: list[tuple[dict[str, tuple], int]], row_dim: int) -> bool:
    first, _ = layouts[0]
    for layout, share in layouts:
        if layout.keys() != first.keys():
            return False
        for name, (shape, dtype) in layout.items():
            other_shape, other_dtype = first[name]
            if dtype != other_dtype or len(shape) != len(other_shape) or len(shape) <= row_dim:
                return False
            if shape[row_dim] < share or _without(shape, row_dim) != _without(other_shape, row_dim):
                return False
    return True


def _without(shape: tuple[int, ...], dim: int) -> tuple[int, ...]:
    return shape[:dim] + shape[dim + 1:]


def _all_gather_padded(tensor: torch.Tensor, row_dim: int, shares: list[int]) -> torch.Tensor:
    """Every rank's ``tensor`` (``shares[r]`` rows along ``row_dim``) concatenated, on CPU."""
    shape = list(tensor.shape)
    shape[row_dim] = max(shares)
    padded = tensor.new_zeros(shape)
    padded.narrow(row_dim, 0, tensor.shape[row_dim]).copy_(tensor)
    parts = [torch.empty_like(padded) for _ in shares]
    dist.all_gather(parts, padded)
    kept = [part.narrow(row_dim, 0, share) for part, share in zip(parts, shares, strict=True)]
    return torch.cat(kept, dim=row_dim).cpu()


# ----------------------------------------------------------------------------- resume: slice
def rows_of_rank(
    state: Mapping[str, torch.Tensor], row_dim: int, total_rows: int, rank: int, world: int
) -> RowState | None:
    """Rank ``rank`` of ``world``'s rows of a gathered ``state`` for global batches of
    ``total_rows`` rows (all of them for ``world=1``); ``None`` when ``state`` does not hold
    exactly ``total_rows`` rows (a different batch size: the stored rows are other streams).

    A rank without rows of its own trains on a weight-0 copy of one row and gets that row's
    state, as :func:`~rnnkit.train.distributed.shard_batch` gives it that row.
    """
    if stored_rows(state, row_dim) != total_rows:
        return None
    start, stop = held_rows(total_rows, rank, world)
    return {name: tensor.narrow(row_dim, start, stop - start) for name, tensor in state.items()}
