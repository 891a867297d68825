"""Language model (character or word level): embedding → RNN → linear over the vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rnnkit.data.batch import TokenBatch
from rnnkit.models._config import RecurrentOptions, expect_config, require, require_at_least
from rnnkit.models._recurrent import (
    State,
    build_rnn,
    embed_tokens,
    eval_mode,
)
from rnnkit.models.losses import require_targets, token_cross_entropy
from rnnkit.models.sampling import SamplingOptions, sample_sequence


@dataclass(kw_only=True)
class LanguageModelConfig(RecurrentOptions):
    """Settings of :class:`LanguageModel`.

    - ``vocab_size``: number of token ids.
    - ``embedding_size``: size of token embeddings.
    - ``proj_size``: LSTM only; projects each hidden state to this size (0: no projection).
    - ``tie_embeddings``: share the input embedding matrix with the output layer (Press & Wolf
      2017); needs the recurrent output size (``proj_size`` or ``hidden_size``) to equal
      ``embedding_size``.
    """

    vocab_size: int
    embedding_size: int = 64
    proj_size: int = 0
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "vocab_size", "embedding_size")
        require(
            self.proj_size == 0 or (self.cell == "lstm" and 0 < self.proj_size < self.hidden_size),
            self, "proj_size", "0, or for cell='lstm' an integer in [1, hidden_size)",
        )  # fmt: skip
        if self.tie_embeddings and self.output_size != self.embedding_size:
            raise ValueError(
                "LanguageModelConfig.tie_embeddings: needs the recurrent output size to equal "
                f"embedding_size={self.embedding_size}, got "
                f"{'proj_size' if self.proj_size else 'hidden_size'}={self.output_size}; set "
                "hidden_size (or proj_size for LSTM) to embedding_size"
            )

    @property
    def output_size(self) -> int:
        """Size of each recurrent output step."""
        return self.proj_size or self.hidden_size


class LanguageModel(nn.Module):
    """Predicts the next token at every position.

    ``forward(tokens (batch, seq), lengths=None, state=None)`` → ``logits (batch, seq, vocab)``
    and the recurrent state after each row's last valid token (pass it back in to continue).
    """

    model_type = "language_model"

    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__()
        self.config = expect_config(config, LanguageModelConfig)
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = build_rnn(config, config.embedding_size, proj_size=config.proj_size)
        self.output = nn.Linear(config.output_size, config.vocab_size)
        if config.tie_embeddings:
            self.output.weight = self.embedding.weight

    def forward(
        self, tokens: Tensor, lengths: Tensor | None = None, state: State | None = None
    ) -> tuple[Tensor, State]:
        """Logits ``(batch, seq, vocab)`` and the final state."""
        embedded = self.dropout(embed_tokens(self.embedding, tokens))  # (batch, seq, emb)
        outputs, state = self.rnn(embedded, state, lengths=lengths)  # (batch, seq, out)
        return self.output(self.dropout(outputs)), state

    def loss(self, batch: TokenBatch, state: State | None = None) -> Tensor:
        """Mean next-token cross-entropy over valid positions of ``batch``."""
        logits, _ = self(batch.tokens, batch.lengths, state)
        return token_cross_entropy(logits, require_targets(batch.targets))

    def step(self, token_ids: Tensor, state: State | None) -> tuple[Tensor, State]:
        """Advance one token: ``token_ids`` ``(batch,)`` → ``logits (batch, vocab)``, state."""
        embedded = embed_tokens(self.embedding, token_ids, "token_ids")  # (batch, emb)
        output, state = self.rnn.step(embedded, state)  # (batch, out)
        return self.output(output), state

    def generate(
        self,
        prime_ids: list[int] | Tensor,
        max_length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop_id: int | None = None,
        banned_ids: tuple[int, ...] = (),
    ) -> list[int]:
        """Continue ``prime_ids`` (non-empty) by up to ``max_length`` new token ids.

        Greedy when ``temperature`` is 0; see :class:`SamplingOptions`. Returns only the new
        ids; generation stops before ``stop_id`` (not included) and never produces ``banned_ids``.
        Eval mode is used throughout.
        """
        options = SamplingOptions(temperature, top_k, top_p, seed, banned_ids)
        prime = torch.as_tensor(prime_ids, dtype=torch.int64, device=self.output.weight.device)
        if prime.dim() != 1 or prime.numel() == 0:
            raise ValueError(f"prime_ids: expected a non-empty 1-D sequence, got {prime_ids!r}")
        with eval_mode(self):
            logits, state = self(prime.unsqueeze(0))  # (1, prime_len, vocab)
            return sample_sequence(self.step, logits[:, -1], state, max_length, options, stop_id)
