"""Subword tokenizers (BPE, unigram) trained on the training text, through Hugging Face
``tokenizers`` (a Rust library; ``pip install tokenizers``).

A trained model is kept as the library's own JSON (no pickle), so a run stores it beside its
vocabulary and ``predict``/``evaluate`` rebuild the very same segmentation. Words are marked
with the Metaspace convention of SentencePiece (``▁`` stands for a space), so ``decode``
restores the spacing: ``decode(encode(text)) == text`` for text of known characters without
leading spaces.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SUBWORD_KINDS = ("bpe", "unigram")
UNKNOWN = "<unk>"
_PROBE = "a \ufffd\U0010fffd \u5b57 <unk>"  # characters no trained model has seen


def _library() -> Any:
    try:
        import tokenizers
    except ImportError as error:  # an optional dependency, pinned in requirements.txt
        raise ImportError("data.tokenizer: bpe/unigram needs the tokenizers package: "
                          "pip install tokenizers") from error
    return tokenizers


class SubwordTokenizer:
    """``encode(text) -> subword strings`` and ``decode(subwords) -> text`` with a trained model.

    Build with :meth:`train` or :meth:`from_json`; :meth:`to_json` gives the text to store.
    """

    def __init__(self, model: Any, kind: str) -> None:
        self._model = model
        self.name = kind

    @classmethod
    def train(cls, texts: Iterable[str], kind: str, vocab_size: int) -> SubwordTokenizer:
        """Learn a ``kind`` (``bpe`` or ``unigram``) model of about ``vocab_size`` subwords."""
        if kind not in SUBWORD_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(SUBWORD_KINDS)}, got {kind!r}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"vocab_size: expected an integer >= 2, got {vocab_size!r}")
        library = _library()
        models, trainers = library.models, library.trainers
        if kind == "bpe":
            model = library.Tokenizer(models.BPE(unk_token=UNKNOWN))
            trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[UNKNOWN],
                                          show_progress=False)
        else:
            model = library.Tokenizer(models.Unigram())
            trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=[UNKNOWN],
                                              unk_token=UNKNOWN, show_progress=False)
        model.pre_tokenizer = library.pre_tokenizers.Metaspace()
        model.decoder = library.decoders.Metaspace()
        model.train_from_iterator(texts, trainer=trainer)
        return cls(model, kind)

    @classmethod
    def from_json(cls, text: str, kind: str) -> SubwordTokenizer:
        """The tokenizer stored by :meth:`to_json`."""
        try:
            model = _library().Tokenizer.from_str(text)
        except Exception as error:  # the library raises its own exception type
            raise ValueError(f"subword tokenizer JSON: cannot be read ({error})") from None
        try:  # JSON that parses can still fail on the first unknown character (no unk id)
            model.decoder.decode(model.encode(_PROBE, add_special_tokens=False).tokens)
        except Exception as error:
            raise ValueError(f"subword tokenizer JSON: cannot encode text ({error})") from None
        return cls(model, kind)

    def to_json(self) -> str:
        """The model as the library's JSON."""
        return self._model.to_str()

    def encode(self, text: str) -> list[str]:
        """The subword strings of ``text``."""
        return self._model.encode(text, add_special_tokens=False).tokens

    def decode(self, tokens: list[str]) -> str:
        """Join subwords back into text (``▁`` becomes a space)."""
        return self._model.decoder.decode(list(tokens))
