"""Batches of similar-length examples, to cut padding, in a seeded order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The random generator for one epoch: a pure function of ``seed`` and ``epoch``."""
    return np.random.default_rng([seed, epoch])


def plain_batches(
    n: int, batch_size: int, rng: np.random.Generator | None, drop_last: bool = False
) -> list[np.ndarray]:
    """Index batches over ``range(n)``, shuffled by ``rng`` (in order when ``rng`` is None)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return _cut(order, batch_size, drop_last)


def bucketed_batches(
    lengths: Sequence[int],
    batch_size: int,
    rng: np.random.Generator,
    pool_batches: int = 50,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """Index batches of similar lengths.

    Shuffle all indices, take pools of ``pool_batches * batch_size``, sort each pool by length
    and cut it into batches, then shuffle the batch order. Pools keep some randomness in which
    examples meet; sorting inside a pool removes most of the padding.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    pool_size = pool_batches * batch_size
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool_size):
        pool = order[start: start + pool_size]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        batches.extend(_cut(pool, batch_size, drop_last=False))
    if drop_last:
        batches = [batch for batch in batches if len(batch) == batch_size]
    return [batches[i] for i in rng.permutation(len(batches))]


def _cut(order: np.ndarray, batch_size: int, drop_last: bool) -> list[np.ndarray]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    return [order[start: start + batch_size] for start in range(0, stop, batch_size)]


def padding_fraction(lengths: Sequence[int], batches: Sequence[np.ndarray]) -> float:
    """Share of padded positions when each batch is padded to its longest example."""
    lengths = np.asarray(lengths)
    padded = sum(len(batch) * int(lengths[batch].max()) for batch in batches)
    return 1.0 - float(lengths.sum()) / padded if padded else 0.0
