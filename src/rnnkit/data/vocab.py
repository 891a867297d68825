"""Token <-> id mapping with special tokens, saved as JSON next to a model."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
DEFAULT_SPECIALS = (PAD, UNK, BOS, EOS)
Order = Literal["frequency", "lexicographic"]


class Vocab:
    """An ordered list of tokens; a token's id is its position.

    Specials come first in the order given (by default ``<pad>``=0, ``<unk>``=1, ``<bos>``=2,
    ``<eos>``=3). Label vocabularies (classes, tags) use ``specials=()``. Looking up an unknown
    token gives the ``<unk>`` id, or raises ``KeyError`` when the vocabulary has no ``<unk>``.
    """

    def __init__(self, tokens: Sequence[str], specials: Sequence[str] = DEFAULT_SPECIALS):
        self.specials = tuple(specials)
        self.itos: list[str] = list(self.specials) + [t for t in tokens if t not in self.specials]
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("tokens must be unique, got duplicates")

    @classmethod
    def build(
        cls,
        sequences: Iterable[Iterable[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
        order: Order = "frequency",
    ) -> Vocab:
        """Count tokens over ``sequences`` and keep those seen at least ``min_freq`` times.

        Order: ``'frequency'`` sorts by count (highest first), ties broken by first appearance
        in the data, so the result depends only on the data and its order; ``'lexicographic'``
        sorts by the token string. ``max_size`` caps the number of non-special tokens.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
        if order not in ("frequency", "lexicographic"):
            raise ValueError(f"order must be 'frequency' or 'lexicographic', got {order!r}")
        counts: Counter[str] = Counter()
        for sequence in sequences:
            counts.update(sequence)
        return cls.from_counts(counts, min_freq, max_size, specials, order)

    @classmethod
    def from_counts(
        cls,
        counts: Counter[str],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
        order: Order = "frequency",
    ) -> Vocab:
        """:meth:`build` from token counts already made (in first-appearance order)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
        kept = [(token, n) for token, n in counts.items()
                if n >= min_freq and token not in specials]
        # Counter keeps first-appearance order and sorted() is stable: ties stay in that order.
        kept.sort(key=lambda item: -item[1])
        tokens = [token for token, _ in kept][:max_size]
        if order == "lexicographic":
            tokens.sort()
        return cls(tokens, specials)

    @classmethod
    def build_labels(cls, labels: Iterable[str]) -> Vocab:
        """A vocabulary of class or tag labels: no specials, sorted, so ids are stable."""
        return cls(sorted(set(labels)), specials=())

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.itos, self.specials) == (other.itos,
                                                                          other.specials)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={self.specials})"

    def _special_id(self, token: str) -> int:
        if token not in self.stoi:
            raise KeyError(f"this vocabulary has no {token} token (specials: {self.specials})")
        return self.stoi[token]

    @property
    def pad_id(self) -> int:
        return self._special_id(PAD)

    @property
    def unk_id(self) -> int:
        return self._special_id(UNK)

    @property
    def bos_id(self) -> int:
        return self._special_id(BOS)

    @property
    def eos_id(self) -> int:
        return self._special_id(EOS)

    def lookup(self, token: str) -> int:
        """The id of ``token``; unknown tokens map to ``<unk>`` (``KeyError`` without one)."""
        index = self.stoi.get(token)
        if index is not None:
            return index
        if UNK in self.stoi:
            return self.stoi[UNK]
        raise KeyError(f"unknown token {token!r} and this vocabulary has no {UNK}")

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens`` (unknown ones as in :meth:`lookup`)."""
        if UNK in self.stoi:  # fast path: one dict lookup per token
            unk, stoi = self.stoi[UNK], self.stoi
            return [stoi.get(token, unk) for token in tokens]
        return [self.lookup(token) for token in tokens]

    def decode(self, ids: Iterable[int], skip_specials: bool = False) -> list[str]:
        """Tokens of ``ids``; with ``skip_specials`` the special tokens are dropped."""
        tokens = []
        for index in ids:
            index = int(index)
            if not 0 <= index < len(self.itos):
                raise ValueError(f"id must be in [0, {len(self.itos)}), got {index}")
            token = self.itos[index]
            if not (skip_specials and token in self.specials):
                tokens.append(token)
        return tokens

    def to_json(self) -> str:
        """A JSON document that :meth:`from_json` turns back into an equal vocabulary."""
        return json.dumps({"specials": list(self.specials), "tokens": self.itos},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, document: str) -> Vocab:
        """The vocabulary written by :meth:`to_json`."""
        data = json.loads(document)
        if not isinstance(data, dict) or not {"specials", "tokens"} <= data.keys():
            raise ValueError("vocabulary JSON must be an object with 'specials' and 'tokens'")
        for key in ("specials", "tokens"):
            value = data[key]
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise ValueError(f"vocabulary JSON: {key!r} must be a list of strings, got "
                                 f"{json.dumps(value)[:80]}")
        specials = data["specials"]
        if data["tokens"][: len(specials)] != specials:
            raise ValueError("vocabulary JSON: 'tokens' must start with the 'specials'")
        return cls(data["tokens"][len(specials):], specials)

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as UTF-8 JSON to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
