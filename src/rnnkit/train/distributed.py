"""Distributed data parallel training: process groups, per-rank batch shards, and the launcher.

Design: every rank iterates the *same* global batches (same source, same seed) and keeps its
own rows of each: rank ``r`` of ``N`` takes rows ``r*B//N`` to ``(r+1)*B//N - 1`` of a batch of
``B`` rows. Shares differ by at most one row when ``B`` is not divisible by ``N``; each rank's
loss is scaled by ``N * rows_r / B`` before the gradients are averaged by
:class:`~torch.nn.parallel.DistributedDataParallel`, so the averaged gradient is the gradient of
the row-weighted mean loss over the whole global batch. Consequences:

- ``N`` processes train the same model as one process with the same global batch and seed: the
  same batches, the same initial weights, the same gradients up to float32 summation order. This
  is exact for losses that are a mean over rows (classification, forecasting, language models
  with fixed-length chunks); for token-averaged losses over padded rows (tagging, seq2seq) the
  ranks' token counts differ a little and the weighting by rows is a close approximation.
- Every rank takes the same number of steps per epoch (no uneven-input hangs).
- Language models: rows of a :class:`~rnnkit.data.LanguageModelStream` batch are its parallel
  streams, so rank ``r`` reads streams ``r*B//N ...``, a contiguous shard of the text, and its
  carried hidden state is the slice of the single-process one.
- A batch with fewer rows than ranks gives the ranks without a row of their own a copy of one
  row at weight 0 (every rank must run forward and backward for the gradient all-reduce).

Launching (``torchrun`` is PyTorch's launcher; ``rnnkit train --nproc N`` runs it for you)::

    # one machine, N processes (gloo on CPU, NCCL on CUDA; rendezvous on 127.0.0.1, free port)
    rnnkit train CONFIG --nproc 2
    torchrun --standalone --nproc-per-node 2 -m rnnkit train CONFIG

    # several machines: run on each node, with the same --rdzv-id and endpoint (a host:port
    # every node can reach, usually node 0's)
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
             --rdzv-endpoint node0.example.com:29400 --rdzv-id job42 -m rnnkit train CONFIG

Every node needs the config and data files at the same paths. Rank 0 alone writes the run
directory (config, checkpoints, metrics, summary); ``--resume`` makes every rank read
``checkpoints/last``, so for a multi-machine resume put the run directory on shared storage.
Ctrl-C stops every rank at the same step; rank 0 saves ``last`` (exit code 130). Evaluation runs
on rank 0 while the others wait; its metrics are broadcast so that best checkpoint, early
stopping and reduce-on-plateau decide the same on every rank. A stateful loss's carried state
(truncated-BPTT hidden state) is per rank; a loss that declares its ``state_row_dim`` has every
rank's rows gathered into each checkpoint in global row order, the tensors a single-process run
saves, so a run resumes with that state in any number of processes as long as the global batch
is the same (see :mod:`rnnkit.train.row_state`). Other torchrun options:
``--master-addr/--master-port`` with ``--node-rank`` (static rendezvous instead of c10d) and
``OMP_NUM_THREADS`` (threads per process; torchrun's default is 1). torchrun's
``--max-restarts`` re-runs the same command, which a fresh run refuses once rank 0 has created
the run directory: after a failure, restart by hand with ``--resume``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime
import inspect
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn

from rnnkit.train.contracts import BatchSource
from rnnkit.train.interrupt import StopSignal, signal_handlers_restored

PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=60)  # rank 0 may evaluate a long time alone


def world_size() -> int:
    """Processes in the initialised process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def launched_by_torchrun() -> bool:
    """True inside a process started by ``torchrun`` (or ``rnnkit train --nproc``)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ


def exit_process(code: int = 0) -> NoReturn:
    """End this process with ``code`` after Python's own exit handlers, skipping the native
    libraries' teardown. For the processes of a data-parallel run, once their work is done.

    Why: once DDP has wrapped a model, torch keeps the gloo process group alive after
    ``destroy_process_group`` (nothing in Python refers to it any more), so its worker threads
    still run while the interpreter and the native libraries tear down at exit, which now and
    then aborts a process that finished its work (SIGABRT, "terminate called without an active
    exception"). ``atexit`` handlers run and the standard streams are flushed first, so no
    output, log line or file is lost.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def process_group_from_env(device: torch.device) -> Iterator[bool]:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``) for the block; yields whether one was joined.

    Outside torchrun, or when a group is already initialised, does nothing.
    """
    if not launched_by_torchrun() or dist.is_initialized():
        yield False
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), timeout=PROCESS_GROUP_TIMEOUT)
    try:
        yield True
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if world_size() > 1:
        dist.barrier()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the others (e.g. to write a shared cache once)."""
    if rank() > 0:
        barrier()
    try:
        yield
    finally:
        if rank() == 0:
            barrier()


def from_main(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank; ``value`` without a group."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ------------------------------------------------------------------------------------ sharding
@dataclass
class RankBatch:
    """This rank's rows of a global batch: ``batch``, its share ``rows`` (0 for a weight-0 copy)
    and the global batch's ``total_rows``."""

    batch: Any
    rows: int
    total_rows: int

    def to(self, device: torch.device | str) -> RankBatch:
        """A copy with the batch's tensors on ``device``."""
        moved = self.batch.to(device) if hasattr(self.batch, "to") else self.batch
        return RankBatch(moved, self.rows, self.total_rows)

    def __len__(self) -> int:
        return self.rows


def batch_rows(batch: Any) -> int:
    """Rows of a batch: a tensor's first dimension, the first tensor of a tuple/list/dict, or
    ``len()`` of a batch object (dataclasses such as ``TokenBatch``)."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0:
            raise ValueError("batch: a 0-d tensor has no rows to shard")
        return batch.shape[0]
    if isinstance(batch, (tuple, list, dict)):
        values = batch.values() if isinstance(batch, dict) else batch
        for value in values:
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                return value.shape[0]
        raise TypeError(f"batch: expected tensors to shard by rows, got {type(batch).__name__}")
    if hasattr(batch, "__len__"):
        return len(batch)
    raise TypeError(
        f"batch: expected a tensor, a tuple/list/dict of tensors or an object with len(), "
        f"got {type(batch).__name__}"
    )


def take_rows(batch: Any, start: int, stop: int, rows: int) -> Any:
    """``batch`` with rows ``start:stop`` of every tensor whose first dimension is ``rows``
    (other values, e.g. shared lookup tables, are kept whole)."""
    if isinstance(batch, torch.Tensor):
        return batch[start:stop] if batch.dim() > 0 and batch.shape[0] == rows else batch
    if isinstance(batch, dict):
        return {key: take_rows(value, start, stop, rows) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(take_rows(value, start, stop, rows) for value in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            field.name: take_rows(getattr(batch, field.name), start, stop, rows)
            for field in dataclasses.fields(batch)
        }
        return dataclasses.replace(batch, **changes)
    return batch


def rank_rows(total_rows: int, rank: int, world: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s rows among ``total_rows`` split over ``world``."""
    return rank * total_rows // world, (rank + 1) * total_rows // world


def held_rows(total_rows: int, rank: int, world: int) -> tuple[int, int]:
    """``(start, stop)`` of the rows rank ``rank`` trains on: its own (:func:`rank_rows`), or
    when it has none (fewer rows than ranks) the one row it holds a weight-0 copy of."""
    start, stop = rank_rows(total_rows, rank, world)
    if stop > start:
        return start, stop
    row = min(start, total_rows - 1)
    return row, row + 1


def shard_batch(batch: Any, rank: int, world: int) -> RankBatch:
    """Rank ``rank``'s rows of ``batch``; a weight-0 copy of one row when it has none."""
    total = batch_rows(batch)
    if total < 1:
        raise ValueError("batch: expected at least one row, got an empty batch")
    start, stop = rank_rows(total, rank, world)
    held_start, held_stop = held_rows(total, rank, world)
    return RankBatch(take_rows(batch, held_start, held_stop, total), stop - start, total)


class ShardedSource:
    """A batch source whose batches are this rank's :class:`RankBatch` rows of ``source``'s.

    ``len()`` and the epoch layout are ``source``'s, so every rank takes the same steps.
    """

    def __init__(self, source: BatchSource, rank: int, world: int) -> None:
        if not isinstance(source, BatchSource):
            raise TypeError(
                f"source: expected a batch source (iter_epoch, len), got {type(source).__name__}"
            )
        if not 0 <= rank < world:
            raise ValueError(f"rank: expected 0 <= rank < world={world}, got {rank}")
        self.source, self.rank, self.world = source, rank, world

    def __len__(self) -> int:
        return len(self.source)

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[RankBatch]:
        """This rank's share of each batch of ``epoch`` from batch ``start`` on."""
        if start and "start" in _parameters(self.source.iter_epoch):
            batches = self.source.iter_epoch(epoch, start=start)  # type: ignore[call-arg]
        else:
            batches = self.source.iter_epoch(epoch)
            for _ in range(start):
                next(batches, None)
        for batch in batches:
            yield shard_batch(batch, self.rank, self.world)


def _parameters(function: Callable[..., Any]) -> Sequence[str]:
    try:
        return tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return ()


# ------------------------------------------------------------------------------ the DDP step
class _LossModule(nn.Module):
    """Puts ``loss_fn(model, batch)`` behind one ``forward`` so DDP sees the whole computation
    (``model.loss`` and stateful losses call the model in ways DDP cannot intercept)."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


class DataParallel:
    """The collective parts of a data-parallel step, for :class:`~rnnkit.train.Trainer`.

    Wraps ``model`` and ``loss_fn`` in DDP (which broadcasts rank 0's weights now and averages
    gradients during ``backward``).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, device: torch.device) -> None:
        self.device = device
        self.world = world_size()
        self.rank = rank()
        self.rows = 0  # this rank's share of the latest global batch (a carried state's rows)
        device_ids = [device] if device.type == "cuda" else None
        # static_graph: the same parameters take part in every step (also when some never do).
        self.module = nn.parallel.DistributedDataParallel(
            _LossModule(model, loss_fn), device_ids=device_ids, static_graph=True
        )

    def loss(self, shard: RankBatch) -> tuple[torch.Tensor, float]:
        """``(loss to backward, global mean loss)``; the first is this rank's loss scaled so
        that DDP's average is the row-weighted mean over the global batch."""
        local = self.module(shard.batch)
        self.rows = shard.rows
        weight = self.world * shard.rows / shard.total_rows
        summed = torch.stack([local.detach().float() * shard.rows, local.new_tensor(shard.rows)])
        dist.all_reduce(summed)  # also makes a non-finite loss on any rank stop every rank
        return local * weight, float(summed[0] / summed[1])

    def any(self, *flags: bool) -> list[bool]:
        """Each flag, true when it is true on any rank (stop decisions must agree)."""
        values = torch.tensor([float(flag) for flag in flags], device=self.device)
        dist.all_reduce(values)
        return [bool(value > 0) for value in values.tolist()]

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (e.g. metrics only rank 0 computed)."""
        return from_main(value)


def data_parallel(model: nn.Module, loss_fn: Callable, device: torch.device) -> DataParallel | None:
    """A :class:`DataParallel` when a process group of more than one rank is initialised."""
    return DataParallel(model, loss_fn, device) if world_size() > 1 else None


def rank_seed(seed: int, rank: int, step: int) -> int:
    """A seed for rank ``rank``'s own random stream (dropout masks) from ``step`` on, so ranks
    do not draw identical masks for their different rows."""
    return (seed * 1_000_003 + rank * 7_919 + step) % 2**32


# --------------------------------------------------------------------------------- launching
def launch_local(nproc: int, argv: Sequence[str]) -> int:
    """Run ``rnnkit *argv`` in ``nproc`` processes on this machine with torchrun's launcher;
    returns the first failing rank's exit code, else 0. Threads per process default to
    cores / ``nproc`` (``OMP_NUM_THREADS``), as torchrun does, so ranks do not oversubscribe."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        raise ValueError(f"--nproc: expected an integer >= 1, got {nproc!r}")
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0,
    )
    # The ranks print their own (one-line) errors; the launcher's failure report is noise here.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    try:
        with _environment_default("OMP_NUM_THREADS", threads), signal_handlers_restored():
            elastic_launch(config, sys.executable)("-m", "rnnkit", *argv)
    except ChildFailedError as failure:
        return failure.get_first_failure()[1].exitcode or 1
    except SignalException as stop:  # Ctrl-C, SIGTERM, SIGHUP: the ranks saved `last` and said so
        raise StopSignal(int(stop.sigval)) from stop
    return 0


@contextlib.contextmanager
def _environment_default(name: str, value: str) -> Iterator[None]:
    """``os.environ[name]`` defaults to ``value`` inside the block (the launched processes
    inherit it); the caller's environment is left as it was."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
