"""Character ids per word for taggers with character-level word features."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import torch

from .batch import TokenBatch
from .collate import collate_tagging
from .sources import ExampleSource
from .vocab import PAD, UNK, Vocab

MAX_WORD_CHARS = 20
"""Characters kept per word (the first ones); longer words (URLs) are cut."""

CharExample = tuple[Sequence[int], Sequence[int], Sequence[Sequence[int]]]
"""``(token_ids, tag_ids, char_ids per token)``."""


@dataclass
class CharTokenBatch(TokenBatch):
    """A :class:`TokenBatch` plus ``chars``: ``(batch, seq, word_len)`` int64 character ids,
    0 (``<pad>``) after each word's last character and for padded words."""

    chars: torch.Tensor | None = None


def build_char_vocab(words: Iterable[str]) -> Vocab:
    """Every character of ``words`` with ``<pad>`` = 0 and ``<unk>`` = 1 (case is kept)."""
    return Vocab.build(words, specials=(PAD, UNK))


def word_chars(chars: Vocab, words: Sequence[str]) -> list[list[int]]:
    """Character ids of each word (at most :data:`MAX_WORD_CHARS`; an empty word gets
    ``<unk>``, so every word has at least one character)."""
    return [chars.encode(word[:MAX_WORD_CHARS]) or [chars.unk_id] for word in words]


def pad_chars(sentences: Sequence[Sequence[Sequence[int]]]) -> torch.Tensor:
    """``(batch, seq, word_len)`` int64 character ids padded with 0."""
    seq = max(len(words) for words in sentences)
    width = max((len(chars) for words in sentences for chars in words), default=1)
    padded = torch.zeros(len(sentences), seq, max(width, 1), dtype=torch.int64)
    for row, words in enumerate(sentences):
        for column, chars in enumerate(words):
            padded[row, column, : len(chars)] = torch.as_tensor(chars, dtype=torch.int64)
    return padded


def collate_char_tagging(examples: Sequence[CharExample], pad_id: int) -> CharTokenBatch:
    """``[(token_ids, tag_ids, char_ids per token), ...]`` -> :class:`CharTokenBatch`."""
    batch = collate_tagging([(ids, tags) for ids, tags, _ in examples], pad_id)
    return CharTokenBatch(batch.tokens, batch.lengths, batch.targets,
                          pad_chars([chars for _, _, chars in examples]))


def char_tagging_source(examples: Sequence[CharExample], pad_id: int, batch_size: int,
                        seed: int = 0, shuffle: bool = True) -> ExampleSource:
    """Length-bucketed :class:`CharTokenBatch` batches of ``examples``."""
    return ExampleSource(examples, partial(collate_char_tagging, pad_id=pad_id), batch_size,
                         seed, shuffle, [len(ids) for ids, _, _ in examples])
