"""Tokenizers: text -> list of token strings and back. Ids are the :class:`Vocab`'s job."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_WORD_OR_PUNCTUATION = re.compile(r"[^\W_]+|[^\w\s]|_")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


class Tokenizer(Protocol):
    """Anything with ``encode(text) -> tokens`` and ``decode(tokens) -> text``."""

    name: str

    def encode(self, text: str) -> list[str]: ...

    def decode(self, tokens: list[str]) -> str: ...


@dataclass(frozen=True)
class CharTokenizer:
    """Every character is a token; ``decode(encode(text)) == text`` exactly."""

    name: str = "char"

    def encode(self, text: str) -> list[str]:
        """Split ``text`` into its characters."""
        return list(text)

    def decode(self, tokens: list[str]) -> str:
        """Concatenate characters."""
        return "".join(tokens)


@dataclass(frozen=True)
class WordTokenizer:
    """Words and punctuation marks as tokens, in the spirit of torchtext's ``basic_english``.

    Lower-cases (unless ``lowercase=False``), turns ``<br />`` into a space, and splits every
    punctuation mark into its own token, so ``"Don't stop!"`` gives
    ``["don", "'", "t", "stop", "!"]``. ``decode`` joins tokens with single spaces: it restores
    the words, not the original spacing or case.
    """

    lowercase: bool = True
    name: str = "word"

    def encode(self, text: str) -> list[str]:
        """Split ``text`` into word and punctuation tokens."""
        text = _HTML_BREAK.sub(" ", text)
        if self.lowercase:
            text = text.lower()
        return _WORD_OR_PUNCTUATION.findall(text)

    def decode(self, tokens: list[str]) -> str:
        """Join tokens with single spaces."""
        return " ".join(tokens)


def get_tokenizer(name: str) -> CharTokenizer | WordTokenizer:
    """The tokenizer called ``name``: ``'char'`` or ``'word'``."""
    tokenizers = {"char": CharTokenizer(), "word": WordTokenizer()}
    if name in ("bpe", "unigram"):  # learnt from data, so not available by name alone
        raise ValueError(f"tokenizer {name!r} is a subword model learnt from training text "
                         "(rnnkit.data.SubwordTokenizer.train); data.tokenizer: "
                         f"{name} applies to seq2seq runs, others take char or word")
    if name not in tokenizers:
        raise ValueError(f"tokenizer must be one of {sorted(tokenizers)}, got {name!r}")
    return tokenizers[name]
