"""Out-of-vocabulary tokens when scoring text with a language model.

A token the training text never contained maps to ``<unk>``. Whether the model can score it
depends on training:

- ``<unk>`` occurred in the training stream (the vocabulary was capped by ``max_vocab`` or
  ``min_freq``): the model learned a probability for "some rare token", so ``<unk>`` is scored
  like any other token — the usual practice for word-level perplexity.
- ``<unk>`` never occurred (every training token is in the vocabulary, the normal case for a
  char model): its embedding and output are untrained, and each such target would cost tens of
  nats, so 0.3% unseen characters could move the mean loss by 0.2 nats. As SRILM (``ppl``,
  "OOVs") and KenLM (``query``, "Perplexity excluding OOVs") do, those tokens are left out of
  the model's input and of the score, and counted separately.

Either way the caller reports how many tokens were out of vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScoredIds:
    """Token ids ready to be scored, and what happened to the out-of-vocabulary ones.

    - ``ids``: 1-D int array the model reads (OOV ids removed unless ``unk_scored``).
    - ``oov``: how many input tokens were out of vocabulary (``<unk>``).
    - ``total``: how many input tokens there were.
    - ``unk_scored``: whether OOV tokens were kept and scored as ``<unk>``.
    """

    ids: np.ndarray
    oov: int
    total: int
    unk_scored: bool

    @property
    def oov_rate(self) -> float:
        """Fraction of input tokens out of vocabulary (0 for no input)."""
        return self.oov / self.total if self.total else 0.0


def prepare_for_scoring(ids: Sequence[int] | np.ndarray, unk_id: int,
                        unk_learned: bool) -> ScoredIds:
    """Count ``<unk>`` ids in ``ids`` and drop them unless the model learned ``<unk>``."""
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"ids: expected a 1-D sequence, got shape {array.shape}")
    unknown = array == unk_id
    oov = int(unknown.sum())
    kept = array if unk_learned or oov == 0 else array[~unknown]
    return ScoredIds(kept, oov, int(array.size), unk_learned)


def count_unknown(tokens: Sequence[str], known: set[str] | dict[str, int]) -> int:
    """How many of ``tokens`` are not in ``known`` (a vocabulary's ``stoi``)."""
    return sum(1 for token in tokens if token not in known)
