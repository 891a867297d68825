"""Batch sources: what the training loop iterates.

The contract (shared with :mod:`rnnkit.train`): a batch source has ``__len__()`` = batches per
epoch and ``iter_epoch(epoch, start=0)`` yielding that epoch's batches from index ``start``.
The batches of an epoch are a pure function of the source's ``seed`` and ``epoch``, so a run
resumes exactly by calling ``iter_epoch(e, start=k)`` — equal to skipping ``k`` batches of
``iter_epoch(e)`` but without building them (only index arrays are shuffled up front).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from .batch import WindowBatch
from .bucketing import bucketed_batches, epoch_rng, plain_batches
from .collate import (
    collate_classification,
    collate_conditional,
    collate_pairs,
    collate_tagging,
    collate_windows,
)

BatchT = TypeVar("BatchT", covariant=True)


@runtime_checkable
class BatchSource(Protocol[BatchT]):
    """Deterministic, resumable batches for one epoch at a time."""

    def __len__(self) -> int: ...

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[BatchT]: ...


class ExampleSource:
    """Batches of examples put together by ``collate``, shuffled per epoch by ``seed``.

    With ``lengths`` (one per example) batches are length-bucketed to cut padding; with
    ``shuffle=False`` batches follow the example order (use it for evaluation).
    """

    def __init__(
        self,
        examples: Sequence[Any],
        collate: Callable[[list[Any]], Any],
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        lengths: Sequence[int] | None = None,
        drop_last: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(examples) == 0:
            raise ValueError("examples must not be empty")
        if lengths is not None and len(lengths) != len(examples):
            raise ValueError(f"lengths has {len(lengths)} entries for {len(examples)} examples")
        self.examples = examples
        self.collate = collate
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.drop_last = drop_last
        self._length = len(self.batch_indices(0))

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The example indices of every batch of ``epoch`` (cheap: no collation)."""
        if not self.shuffle:
            return plain_batches(len(self.examples), self.batch_size, None, self.drop_last)
        rng = epoch_rng(self.seed, epoch)
        if self.lengths is not None:
            return bucketed_batches(self.lengths, self.batch_size, rng, drop_last=self.drop_last)
        return plain_batches(len(self.examples), self.batch_size, rng, self.drop_last)

    def __len__(self) -> int:
        return self._length

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Any]:
        """Collate and yield the batches of ``epoch`` from batch ``start`` on."""
        for indices in self.batch_indices(epoch)[start:]:
            yield self.collate([self.examples[i] for i in indices])


def classification_source(
    examples: Sequence[tuple[Sequence[int], int]], pad_id: int, batch_size: int, seed: int = 0,
    shuffle: bool = True, bucket: bool = True,
) -> ExampleSource:
    """``(token_ids, class_id)`` examples -> :class:`TokenBatch` batches."""
    lengths = [len(ids) for ids, _ in examples] if bucket else None
    return ExampleSource(examples, partial(collate_classification, pad_id=pad_id), batch_size,
                         seed, shuffle, lengths)


def tagging_source(
    examples: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, batch_size: int,
    seed: int = 0, shuffle: bool = True, bucket: bool = True,
) -> ExampleSource:
    """``(token_ids, tag_ids)`` examples -> :class:`TokenBatch` batches."""
    lengths = [len(ids) for ids, _ in examples] if bucket else None
    return ExampleSource(examples, partial(collate_tagging, pad_id=pad_id), batch_size, seed,
                         shuffle, lengths)


def pair_source(
    examples: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, bos_id: int,
    eos_id: int, batch_size: int, seed: int = 0, shuffle: bool = True, bucket: bool = True,
) -> ExampleSource:
    """``(source_ids, target_ids)`` examples -> :class:`PairBatch` batches (bucketed by source)."""
    lengths = [len(src) for src, _ in examples] if bucket else None
    collate = partial(collate_pairs, pad_id=pad_id, bos_id=bos_id, eos_id=eos_id)
    return ExampleSource(examples, collate, batch_size, seed, shuffle, lengths)


def conditional_source(
    examples: Sequence[tuple[Any, Sequence[int]]], pad_id: int, bos_id: int, eos_id: int,
    batch_size: int, seed: int = 0, shuffle: bool = True, bucket: bool = True,
) -> ExampleSource:
    """``(condition, token_ids)`` examples -> :class:`ConditionalBatch` batches."""
    lengths = [len(ids) for _, ids in examples] if bucket else None
    collate = partial(collate_conditional, pad_id=pad_id, bos_id=bos_id, eos_id=eos_id)
    return ExampleSource(examples, collate, batch_size, seed, shuffle, lengths)


class WindowSource:
    """Batches of (history, future) windows -> :class:`WindowBatch`.

    ``history`` is ``(windows, lookback, features)`` and ``future``
    ``(windows, horizon, targets)``, e.g. from :func:`rnnkit.data.windows.sliding_windows`;
    optional ``covariates`` ``(windows, lookback + horizon, future_covariates)`` and ``static``
    ``(windows, static_covariates)``.
    """

    def __init__(self, history: np.ndarray, future: np.ndarray, batch_size: int, seed: int = 0,
                 shuffle: bool = True, drop_last: bool = False,
                 covariates: np.ndarray | None = None, static: np.ndarray | None = None):
        for name, array in (("future", future), ("covariates", covariates), ("static", static)):
            if array is not None and len(array) != len(history):
                raise ValueError(f"history has {len(history)} windows but {name} {len(array)}")
        self.history, self.future = np.asarray(history), np.asarray(future)
        self.covariates = None if covariates is None else np.asarray(covariates)
        self.static = None if static is None else np.asarray(static)
        self.source = ExampleSource(range(len(history)), self._collate, batch_size, seed,
                                    shuffle, drop_last=drop_last)

    def _collate(self, indices: list[int]) -> WindowBatch:
        def pick(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[indices]

        return collate_windows(self.history[indices], self.future[indices],
                               pick(self.covariates), pick(self.static))

    def __len__(self) -> int:
        return len(self.source)

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[WindowBatch]:
        """The windows of ``epoch`` from batch ``start`` on."""
        return self.source.iter_epoch(epoch, start)


__all__ = [
    "BatchSource",
    "ExampleSource",
    "WindowSource",
    "classification_source",
    "conditional_source",
    "pair_source",
    "tagging_source",
]
