"""Sequence classifier (many-to-one): encoder → pooling over valid steps → MLP head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.data.batch import TokenBatch
from rnnkit.models._config import RecurrentOptions, expect_config, require_at_least
from rnnkit.models._recurrent import eval_mode, final_hidden
from rnnkit.models.encoder import SequenceEncoder, check_lengths
from rnnkit.models.losses import require_targets
from rnnkit.models.pooling import pool


@dataclass(kw_only=True)
class SequenceClassifierConfig(RecurrentOptions):
    """Settings of :class:`SequenceClassifier`.

    - ``num_classes`` >= 2. Two classes use a single logit (logistic regression on the pooled
      vector, trained with binary cross-entropy); more use a softmax.
    - ``pooling``: ``'last'`` (final state; both directions' when bidirectional), ``'mean'`` or
      ``'max'`` over valid steps.
    - ``head_hidden_size``: hidden layer of the MLP head (0: a single linear layer).
    """

    vocab_size: int
    num_classes: int
    embedding_size: int = 64
    bidirectional: bool = False
    pooling: Literal["last", "mean", "max"] = "last"
    head_hidden_size: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "vocab_size", "embedding_size")
        require_at_least(self, 2, "num_classes")
        require_at_least(self, 0, "head_hidden_size")


def mlp_head(input_size: int, hidden_size: int, output_size: int, dropout: float) -> nn.Module:
    """``Linear → tanh → dropout → Linear``, or one ``Linear`` when ``hidden_size`` is 0."""
    if hidden_size == 0:
        return nn.Linear(input_size, output_size)
    return nn.Sequential(
        nn.Linear(input_size, hidden_size),
        nn.Tanh(),
        nn.Dropout(dropout),
        nn.Linear(hidden_size, output_size),
    )


class SequenceClassifier(nn.Module):
    """One label per sequence. ``forward(tokens (batch, seq), lengths (batch,))`` → logits
    ``(batch, num_classes)``."""

    model_type = "sequence_classifier"

    def __init__(self, config: SequenceClassifierConfig) -> None:
        super().__init__()
        self.config = expect_config(config, SequenceClassifierConfig)
        self.encoder = SequenceEncoder(
            config, config.vocab_size, config.embedding_size, config.bidirectional
        )
        self.dropout = nn.Dropout(config.dropout)
        # Binary: one logit z, shown as logits [0, z], whose softmax is [1 - σ(z), σ(z)].
        outputs = 1 if config.num_classes == 2 else config.num_classes
        self.head = mlp_head(
            self.encoder.output_size, config.head_hidden_size, outputs, config.dropout
        )

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class logits ``(batch, num_classes)``; ``lengths`` ``None`` means no padding."""
        lengths = check_lengths(lengths, tokens)
        outputs, state = self.encoder(tokens, lengths)  # (batch, seq, directions * hidden)
        pooled = pool(
            self.config.pooling, outputs, lengths, final_hidden(state), self.encoder.directions
        )  # (batch, directions * hidden)
        logits = self.head(self.dropout(pooled))  # (batch, 1 or num_classes)
        if self.config.num_classes == 2:
            logits = torch.cat([torch.zeros_like(logits), logits], dim=-1)  # (batch, 2)
        return logits

    def loss(self, batch: TokenBatch) -> Tensor:
        """Mean cross-entropy (binary cross-entropy for two classes) against class ids."""
        targets = require_targets(batch.targets)
        if targets.shape != (len(batch),):
            raise ValueError(
                f"batch.targets: expected class ids of shape ({len(batch)},), "
                f"got {tuple(targets.shape)}"
            )
        return F.cross_entropy(self(batch.tokens, batch.lengths), targets)

    def predict_proba(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class probabilities ``(batch, num_classes)`` (rows sum to 1), in eval mode."""
        with eval_mode(self):
            return self(tokens, lengths).softmax(dim=-1)

    def predict(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Most likely class id per row ``(batch,)``, in eval mode."""
        return self.predict_proba(tokens, lengths).argmax(dim=-1)
