"""Sequence tagger (many-to-many, synchronised): one label per input token."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from rnnkit.data.batch import IGNORE_INDEX, TokenBatch
from rnnkit.models._config import RecurrentOptions, expect_config, require_at_least
from rnnkit.models._recurrent import eval_mode
from rnnkit.models.classifier import mlp_head
from rnnkit.models.encoder import SequenceEncoder, check_lengths
from rnnkit.models.losses import require_targets, token_cross_entropy
from rnnkit.models.pooling import valid_mask


@dataclass(kw_only=True)
class SequenceTaggerConfig(RecurrentOptions):
    """Settings of :class:`SequenceTagger`: ``vocab_size`` token ids, ``num_tags`` labels,
    ``bidirectional`` (default True: a tag usually depends on both sides), and
    ``head_hidden_size`` of the per-token MLP (0: linear)."""

    vocab_size: int
    num_tags: int
    embedding_size: int = 64
    bidirectional: bool = True
    head_hidden_size: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "vocab_size", "num_tags", "embedding_size")
        require_at_least(self, 0, "head_hidden_size")


class SequenceTagger(nn.Module):
    """``forward(tokens (batch, seq), lengths (batch,))`` → logits ``(batch, seq, num_tags)``."""

    model_type = "sequence_tagger"

    def __init__(self, config: SequenceTaggerConfig) -> None:
        super().__init__()
        self.config = expect_config(config, SequenceTaggerConfig)
        self.encoder = SequenceEncoder(
            config, config.vocab_size, config.embedding_size, config.bidirectional
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = mlp_head(
            self.encoder.output_size, config.head_hidden_size, config.num_tags, config.dropout
        )

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Tag logits ``(batch, seq, num_tags)``; padded positions are not meaningful."""
        lengths = check_lengths(lengths, tokens)
        outputs, _ = self.encoder(tokens, lengths)  # (batch, seq, directions * hidden)
        return self.head(self.dropout(outputs))

    def loss(self, batch: TokenBatch) -> Tensor:
        """Mean cross-entropy over real tokens (targets are ``IGNORE_INDEX`` at padding)."""
        return token_cross_entropy(
            self(batch.tokens, batch.lengths), require_targets(batch.targets)
        )

    def predict(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Most likely tag ids ``(batch, seq)``, ``IGNORE_INDEX`` at padded positions; eval mode."""
        lengths = check_lengths(lengths, tokens)
        with eval_mode(self):
            tags = self(tokens, lengths).argmax(dim=-1)  # (batch, seq)
        return tags.masked_fill(~valid_mask(lengths.to(tags.device), tags.shape[1]), IGNORE_INDEX)
