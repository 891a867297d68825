"""Deterministic train/valid/test splits, by example or by group (movie, play, document)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Index arrays of the three parts; disjoint, together covering every example."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def items(self) -> list[tuple[str, np.ndarray]]:
        """``[("train", indices), ("valid", indices), ("test", indices)]``."""
        return [("train", self.train), ("valid", self.valid), ("test", self.test)]


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"fractions must be three non-negative numbers summing to 1 (train, valid, test), "
            f"got {tuple(fractions)}"
        )
    return fractions[0], fractions[1], fractions[2]


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Shuffle ``range(n)`` with ``seed`` and cut it by ``fractions``.

    Part sizes are ``round(n * fraction)`` for valid and test; train takes the rest.
    """
    _, valid_fraction, test_fraction = _check_fractions(fractions)
    order = np.random.default_rng(seed).permutation(n)
    n_valid, n_test = round(n * valid_fraction), round(n * test_fraction)
    return Split(
        np.sort(order[n_valid + n_test:]),
        np.sort(order[:n_valid]),
        np.sort(order[n_valid: n_valid + n_test]),
    )


def split_by_group(
    groups: Sequence[Hashable], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> Split:
    """Split examples so that every group lands in exactly one part.

    Groups are put in a seeded random order (starting from their sorted order, so the result
    does not depend on the order of examples) and handed to test, then valid, until each holds
    at least its fraction of the examples; the remaining groups form train.
    """
    _, valid_fraction, test_fraction = _check_fractions(fractions)
    labels = np.asarray([str(g) for g in groups])
    unique, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    part_of_group = np.zeros(len(unique), dtype=np.int64)  # 0 train, 1 valid, 2 test
    targets = [(2, test_fraction * len(labels)), (1, valid_fraction * len(labels))]
    position = 0
    for part, wanted in targets:
        taken = 0
        while taken < wanted and position < len(order):
            part_of_group[order[position]] = part
            taken += counts[order[position]]
            position += 1
    part_of_example = part_of_group[inverse]
    return Split(*(np.flatnonzero(part_of_example == part) for part in (0, 1, 2)))


def draw_groups(groups: Sequence[Hashable], min_examples: int, seed: int = 0) -> set[str]:
    """Groups drawn in a seeded random order until they hold at least ``min_examples`` examples.

    Used to cut a sample of whole groups (movies, documents) from a larger set.
    """
    labels = [str(g) for g in groups]
    unique, counts = np.unique(labels, return_counts=True)
    chosen: set[str] = set()
    total = 0
    for index in np.random.default_rng(seed).permutation(len(unique)):
        if total >= min_examples:
            break
        chosen.add(str(unique[index]))
        total += int(counts[index])
    return chosen
