"""The state a loss carries across batches (a truncated-BPTT hidden state, a step count), kept
through checkpoints and data-parallel ranks so that a resumed run continues exactly.

A loss opts in through the protocols of :mod:`rnnkit.train.contracts` (``state_dict``,
``load_state_dict``, ``reset``) and declares what its state is:

- ``state_row_dim`` (an integer): per-row tensors, rows along that dimension. A data-parallel
  run gathers every rank's rows into the tensors a single process would hold
  (:mod:`rnnkit.train.row_state`); a resume hands each rank its rows back at the first batch,
  whose rows tell whether the stored ones fit.
- ``state_replicated = True``: the same on every rank; saved and restored as is.
- neither: saved and restored as is by a single process; not saved by a data-parallel run (a
  resumed run starts it afresh).

:class:`CarriedLossState` is all the trainer needs: :meth:`~CarriedLossState.start_epoch`,
:meth:`~CarriedLossState.before_step`, :meth:`~CarriedLossState.for_checkpoint` and
:meth:`~CarriedLossState.restore`.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from rnnkit.train.contracts import LoadsState, Resettable, SavesState
from rnnkit.train.distributed import DataParallel, RankBatch, batch_rows
from rnnkit.train.row_state import RowState, gather_rows, rows_of_rank, state_row_dim
from rnnkit.train.runtime import is_main_process


class CarriedLossState:
    """The carried state of ``loss_fn`` for a run on ``device``; ``parallel`` is the
    data-parallel run's :class:`~rnnkit.train.distributed.DataParallel` (``None`` for a single
    process)."""

    def __init__(self, loss_fn: Any, device: torch.device,
                 parallel: DataParallel | None = None) -> None:
        self.loss_fn = loss_fn
        self.device = device
        self.parallel = parallel
        self.row_dim = state_row_dim(loss_fn)  # raises TypeError for a malformed declaration
        self.replicated = bool(getattr(loss_fn, "state_replicated", False))
        self.pending: RowState | None = None  # all stored rows, applied at the first batch

    def start_epoch(self) -> None:
        """An epoch starts its carried state afresh (restored rows not used yet are dropped)."""
        self.pending = None
        if isinstance(self.loss_fn, Resettable):
            self.loss_fn.reset()

    def before_step(self, batch: Any) -> None:
        """Hand the loss this rank's restored rows if any wait and fit ``batch`` (a
        :class:`~rnnkit.train.distributed.RankBatch` in a data-parallel run); else warn
        (rank 0) and keep the fresh state."""
        if self.pending is None:
            return
        saved, self.pending = self.pending, None
        assert self.row_dim is not None  # only a per-row state is kept pending
        total = batch.total_rows if isinstance(batch, RankBatch) else batch_rows(batch)
        rank, world = (self.parallel.rank, self.parallel.world) if self.parallel else (0, 1)
        rows = rows_of_rank(saved, self.row_dim, total, rank, world)
        if rows is not None and isinstance(self.loss_fn, LoadsState):
            self.loss_fn.load_state_dict(to_device(rows, self.device))
        elif rows is None and is_main_process():
            warnings.warn(rows_mismatch(saved, self.row_dim, total), RuntimeWarning, stacklevel=2)

    def for_checkpoint(self, collective: bool) -> dict[str, Any] | None:
        """The state to checkpoint. Gathering a per-row state is a collective: every
        data-parallel rank calls this at the same point; ``collective=False`` (a rank
        interrupted on its own) saves no per-row state instead."""
        if not isinstance(self.loss_fn, SavesState):
            return None
        if self.pending is not None:  # restored but not used yet (no step since resume)
            return dict(self.pending)
        if self.parallel is None or self.replicated:
            return self.loss_fn.state_dict()
        if self.row_dim is None or not collective:
            return None
        return gather_rows(self.loss_fn.state_dict(), self.row_dim, self.parallel.rows)

    def restore(self, saved: dict[str, Any] | None) -> None:
        """Load a checkpoint's loss state. A per-row state waits for the first batch; whatever
        is not restored now starts clean rather than stale."""
        restorable = saved is not None and isinstance(self.loss_fn, LoadsState)
        whole = self.row_dim is None and (self.parallel is None or self.replicated)
        if restorable and whole:
            self.loss_fn.load_state_dict(to_device(saved, self.device))
            return
        if restorable and self.row_dim is not None and saved:
            self.pending = dict(saved)
        if isinstance(self.loss_fn, Resettable):
            self.loss_fn.reset()


def rows_mismatch(saved: RowState, row_dim: int, total_rows: int) -> str:
    """The warning for stored rows that do not fit the batches of the resumed run."""
    shapes = {name: tuple(tensor.shape) for name, tensor in saved.items()}
    return (
        f"resume: the checkpoint's carried loss state has shapes {shapes} (rows along dimension "
        f"{row_dim}) but the batches now have {total_rows} rows (a different batch size?); "
        "starting the carried state afresh from zeros"
    )


def to_device(value: Any, device: torch.device) -> Any:
    """Move a batch (anything with ``.to``) or nested tensors to ``device``."""
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value.to(device) if hasattr(value, "to") else value
