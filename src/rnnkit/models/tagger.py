"""Sequence tagger (many-to-many, synchronised): one label per input token, with optional
character-level word features and an optional CRF output layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from rnnkit.data.batch import IGNORE_INDEX, TokenBatch
from rnnkit.models._config import RecurrentOptions, expect_config, require, require_at_least
from rnnkit.models._recurrent import eval_mode
from rnnkit.models.char_features import CharFeatures, build_char_encoder
from rnnkit.models.classifier import mlp_head
from rnnkit.models.crf import LinearChainCRF
from rnnkit.models.encoder import SequenceEncoder, check_lengths
from rnnkit.models.losses import require_targets, token_cross_entropy
from rnnkit.models.pooling import valid_mask


@dataclass(kw_only=True)
class SequenceTaggerConfig(RecurrentOptions):
    """Settings of :class:`SequenceTagger`: ``vocab_size`` token ids, ``num_tags`` labels,
    ``bidirectional`` (default True: a tag usually depends on both sides), and
    ``head_hidden_size`` of the per-token MLP (0: linear).

    - ``crf``: a linear-chain CRF on top (loss: negative log-likelihood per token; prediction:
      Viterbi) with ``forbidden_transitions`` (``[from, to]`` pairs, see
      :class:`~rnnkit.models.crf.LinearChainCRF`) never used.
    - ``char_features``: ``'cnn'`` or ``'lstm'`` over each word's characters (``num_chars``
      ids, ``char_embedding_size``, ``char_hidden_size`` features), concatenated to the word
      embedding; ``forward`` then needs ``chars``.
    - ``freeze_embeddings``: keep the word embeddings fixed (e.g. pretrained vectors).
    """

    vocab_size: int
    num_tags: int
    embedding_size: int = 64
    bidirectional: bool = True
    head_hidden_size: int = 0
    crf: bool = False
    forbidden_transitions: list[list[int]] = field(default_factory=list)
    char_features: CharFeatures = "none"
    num_chars: int = 0
    char_embedding_size: int = 30
    char_hidden_size: int = 50
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "vocab_size", "num_tags", "embedding_size",
                         "char_embedding_size", "char_hidden_size")
        require_at_least(self, 0, "head_hidden_size", "num_chars")
        require(self.char_features == "none" or self.num_chars >= 2, self, "num_chars",
                "at least 2 (padding and one character) with char_features")


class SequenceTagger(nn.Module):
    """``forward(tokens (batch, seq), lengths (batch,), chars (batch, seq, word_len) | None)``
    → emission logits ``(batch, seq, num_tags)``."""

    model_type = "sequence_tagger"

    def __init__(self, config: SequenceTaggerConfig) -> None:
        super().__init__()
        self.config = expect_config(config, SequenceTaggerConfig)
        self.chars = build_char_encoder(config.char_features, config.num_chars,
                                        config.char_embedding_size, config.char_hidden_size)
        self.encoder = SequenceEncoder(
            config, config.vocab_size, config.embedding_size, config.bidirectional,
            extra_input_size=self.chars.output_size if self.chars is not None else 0,
        )
        self.encoder.embedding.weight.requires_grad_(not config.freeze_embeddings)
        self.dropout = nn.Dropout(config.dropout)
        self.head = mlp_head(
            self.encoder.output_size, config.head_hidden_size, config.num_tags, config.dropout
        )
        self.crf = (LinearChainCRF(config.num_tags, config.forbidden_transitions)
                    if config.crf else None)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None,
                chars: Tensor | None = None) -> Tensor:
        """Tag logits (CRF emissions) ``(batch, seq, num_tags)``; padded positions are not
        meaningful."""
        lengths = check_lengths(lengths, tokens)
        extra = None
        if self.chars is not None:
            if chars is None or chars.dim() != 3 or chars.shape[:2] != tokens.shape:
                shape = None if chars is None else tuple(chars.shape)
                raise ValueError(f"chars: expected shape ({tokens.shape[0]}, {tokens.shape[1]}, "
                                 f"word_len) with char_features={self.config.char_features!r}, "
                                 f"got {shape}")
            extra = self.chars(chars)
        outputs, _ = self.encoder(tokens, lengths, extra)  # (batch, seq, directions * hidden)
        return self.head(self.dropout(outputs))

    def loss(self, batch: TokenBatch) -> Tensor:
        """Mean cross-entropy over real tokens (targets are ``IGNORE_INDEX`` at padding); with a
        CRF, the sentences' negative log-likelihood summed and divided by the token count."""
        targets = require_targets(batch.targets)
        logits = self(batch.tokens, batch.lengths, getattr(batch, "chars", None))
        if self.crf is None:
            return token_cross_entropy(logits, targets)
        lengths = batch.lengths.to(logits.device)
        return self.crf.nll(logits, targets, lengths).sum() / lengths.sum()

    def decode(self, logits: Tensor, lengths: Tensor) -> Tensor:
        """Tag ids ``(batch, seq)`` from ``forward``'s logits: Viterbi with a CRF, else argmax;
        ``IGNORE_INDEX`` at padded positions."""
        lengths = lengths.to(logits.device)
        if self.crf is not None:
            return self.crf.decode(logits, lengths)
        tags = logits.argmax(dim=-1)
        return tags.masked_fill(~valid_mask(lengths, tags.shape[1]), IGNORE_INDEX)

    def predict(self, tokens: Tensor, lengths: Tensor | None = None,
                chars: Tensor | None = None) -> Tensor:
        """Most likely tag ids ``(batch, seq)``, ``IGNORE_INDEX`` at padded positions; eval mode."""
        lengths = check_lengths(lengths, tokens)
        with eval_mode(self):
            return self.decode(self(tokens, lengths, chars), lengths)
