"""Turn lists of id sequences into the padded batch dataclasses of :mod:`rnnkit.data.batch`.

Every collate pads to the longest sequence in the batch and records true lengths, so models
can pack or mask without the caller doing anything. Empty sequences are rejected: a recurrent
layer cannot run zero steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .batch import IGNORE_INDEX, ConditionalBatch, PairBatch, TokenBatch, WindowBatch


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_value: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id sequences into ``(batch, max_len)`` int64 and return it with ``(batch,)`` lengths."""
    if not sequences:
        raise ValueError("sequences must hold at least one sequence, got an empty list")
    lengths = torch.tensor([len(sequence) for sequence in sequences], dtype=torch.int64)
    empty = (lengths == 0).nonzero()
    if len(empty):
        raise ValueError(f"sequence {int(empty[0])} of the batch is empty; every sequence "
                         "needs at least one token")
    padded = torch.full((len(sequences), int(lengths.max())), pad_value, dtype=torch.int64)
    for row, sequence in enumerate(sequences):
        padded[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.int64)
    return padded, lengths


def collate_classification(
    examples: Sequence[tuple[Sequence[int], int]], pad_id: int
) -> TokenBatch:
    """``[(token_ids, class_id), ...]`` -> TokenBatch with ``(batch,)`` class targets."""
    tokens, lengths = pad_sequences([ids for ids, _ in examples], pad_id)
    targets = torch.tensor([label for _, label in examples], dtype=torch.int64)
    return TokenBatch(tokens, lengths, targets)


def collate_tagging(
    examples: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int
) -> TokenBatch:
    """``[(token_ids, tag_ids), ...]`` -> TokenBatch with ``(batch, seq)`` tag targets.

    Padded target positions hold ``IGNORE_INDEX``.
    """
    for index, (ids, tags) in enumerate(examples):
        if len(ids) != len(tags):
            raise ValueError(f"example {index}: {len(ids)} tokens but {len(tags)} tags")
    tokens, lengths = pad_sequences([ids for ids, _ in examples], pad_id)
    targets, _ = pad_sequences([tags for _, tags in examples], IGNORE_INDEX)
    return TokenBatch(tokens, lengths, targets)


def collate_pairs(
    examples: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, bos_id: int,
    eos_id: int,
) -> PairBatch:
    """``[(source_ids, target_ids), ...]`` -> PairBatch; targets get BOS ... EOS added."""
    source, source_lengths = pad_sequences([src for src, _ in examples], pad_id)
    target, target_lengths = pad_sequences(
        [[bos_id, *tgt, eos_id] for _, tgt in examples], pad_id
    )
    return PairBatch(source, source_lengths, target, target_lengths)


def collate_conditional(
    examples: Sequence[tuple[int | Sequence[float], Sequence[int]]], pad_id: int, bos_id: int,
    eos_id: int,
) -> ConditionalBatch:
    """``[(condition, token_ids), ...]`` -> ConditionalBatch.

    Inputs are ``BOS + ids`` and targets ``ids + EOS`` (padding is ``IGNORE_INDEX``). A
    condition is a class id (giving ``(batch,)`` int64) or a vector (``(batch, size)`` float32).
    """
    tokens, lengths = pad_sequences([[bos_id, *ids] for _, ids in examples], pad_id)
    targets, _ = pad_sequences([[*ids, eos_id] for _, ids in examples], IGNORE_INDEX)
    conditions = [condition for condition, _ in examples]
    if all(isinstance(c, (int, np.integer)) for c in conditions):
        condition = torch.tensor(conditions, dtype=torch.int64)
    else:
        condition = torch.as_tensor(np.asarray(conditions, dtype=np.float32))
    return ConditionalBatch(condition, tokens, lengths, targets)


def collate_windows(history: np.ndarray, future: np.ndarray, covariates: np.ndarray | None = None,
                    static: np.ndarray | None = None) -> WindowBatch:
    """Stack ``(batch, lookback, features)``, ``(batch, horizon, targets)`` and the optional
    ``(batch, lookback + horizon, future_covariates)`` and ``(batch, static)`` into float32."""
    def tensor(array: np.ndarray | None) -> torch.Tensor | None:
        if array is None:
            return None
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)

    return WindowBatch(tensor(history), tensor(future), tensor(covariates), tensor(static))
