"""Conditional generator (one-to-many): a sequence generated from a class id or a vector,
e.g. names conditioned on their language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from rnnkit.data.batch import ConditionalBatch
from rnnkit.models._config import RecurrentOptions, expect_config, require, require_at_least
from rnnkit.models._recurrent import State, build_rnn, embed_tokens, eval_mode
from rnnkit.models.losses import token_cross_entropy
from rnnkit.models.sampling import SamplingOptions, sample_sequence


@dataclass(kw_only=True)
class ConditionalGeneratorConfig(RecurrentOptions):
    """Settings of :class:`ConditionalGenerator`.

    - ``condition_type``: ``'class'`` (ids in ``[0, num_conditions)``, embedded) or ``'vector'``
      (``condition_size`` floats, projected linearly); either way to ``condition_embedding_size``.
    - ``condition_mode``: the condition sets the initial hidden state (``'init'``), is
      concatenated to every input token (``'input'``), or ``'both'``.
    - ``bos_id`` starts every sequence; ``eos_id`` ends it (generation stops there).
    """

    vocab_size: int
    bos_id: int
    eos_id: int
    condition_type: Literal["class", "vector"] = "class"
    num_conditions: int = 0
    condition_size: int = 0
    condition_embedding_size: int = 32
    condition_mode: Literal["init", "input", "both"] = "both"
    embedding_size: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "vocab_size")
        for name in ("bos_id", "eos_id"):
            require(0 <= getattr(self, name) < self.vocab_size, self, name,
                    f"an id in [0, vocab_size={self.vocab_size})")  # fmt: skip
        if self.condition_type == "class":
            require(self.num_conditions >= 1, self, "num_conditions",
                    "an integer >= 1 for condition_type='class'")  # fmt: skip
        else:
            require(self.condition_size >= 1, self, "condition_size",
                    "an integer >= 1 for condition_type='vector'")  # fmt: skip
        require(
            self.condition_embedding_size >= 1, self, "condition_embedding_size", "an integer >= 1"
        )
        require_at_least(self, 1, "embedding_size")


class ConditionalGenerator(nn.Module):
    """``forward(condition, tokens (batch, seq), lengths)`` → next-token logits
    ``(batch, seq, vocab)``; ``condition`` is ``(batch,)`` class ids or ``(batch, size)``."""

    model_type = "conditional_generator"

    def __init__(self, config: ConditionalGeneratorConfig) -> None:
        super().__init__()
        self.config = expect_config(config, ConditionalGeneratorConfig)
        size = config.condition_embedding_size
        if config.condition_type == "class":
            self.condition_encoder: nn.Module = nn.Embedding(config.num_conditions, size)
        else:
            self.condition_encoder = nn.Linear(config.condition_size, size)
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        self.uses_input = config.condition_mode in ("input", "both")
        self.uses_init = config.condition_mode in ("init", "both")
        self.parts = 2 if config.cell == "lstm" else 1  # LSTM: initialise h and c
        if self.uses_init:
            self.initial_state = nn.Linear(
                size, self.parts * config.num_layers * config.hidden_size
            )
        self.dropout = nn.Dropout(config.dropout)
        rnn_input = config.embedding_size + (size if self.uses_input else 0)
        self.rnn = build_rnn(config, rnn_input)
        self.output = nn.Linear(config.hidden_size, config.vocab_size)

    def encode_condition(self, condition: Tensor) -> Tensor:
        """``(batch,)`` class ids or ``(batch, condition_size)`` → ``(batch, embedding)``."""
        if self.config.condition_type == "class":
            if condition.dim() != 1:
                raise ValueError(
                    f"condition: expected class ids of shape (batch,), got {tuple(condition.shape)}"
                )
            return embed_tokens(self.condition_encoder, condition, "condition")  # type: ignore[arg-type]
        if condition.dim() != 2 or condition.shape[1] != self.config.condition_size:
            raise ValueError(
                f"condition: expected shape (batch, {self.config.condition_size}), "
                f"got {tuple(condition.shape)}"
            )
        return self.condition_encoder(condition.float())

    def _initial_state(self, encoded: Tensor) -> State | None:
        if not self.uses_init:
            return None
        layers, hidden = self.config.num_layers, self.config.hidden_size
        flat = torch.tanh(self.initial_state(encoded))  # (batch, parts * layers * hidden)
        state = flat.reshape(-1, self.parts, layers, hidden).permute(1, 2, 0, 3).contiguous()
        return (state[0], state[1]) if self.parts == 2 else state[0]  # (layers, batch, hidden)

    def _inputs(self, tokens: Tensor, encoded: Tensor) -> Tensor:
        """Token embeddings ``(batch, seq, emb)``, with the condition appended when configured."""
        embedded = self.dropout(embed_tokens(self.embedding, tokens))
        if not self.uses_input:
            return embedded
        repeated = encoded.unsqueeze(-2).expand(*embedded.shape[:-1], encoded.shape[-1])
        return torch.cat([embedded, repeated], dim=-1)

    def forward(
        self, condition: Tensor, tokens: Tensor, lengths: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Logits ``(batch, seq, vocab)`` and the final state."""
        encoded = self.encode_condition(condition)  # (batch, cond_emb)
        state = self._initial_state(encoded)
        outputs, state = self.rnn(self._inputs(tokens, encoded), state, lengths=lengths)
        return self.output(self.dropout(outputs)), state

    def loss(self, batch: ConditionalBatch) -> Tensor:
        """Mean next-token cross-entropy over valid positions."""
        logits, _ = self(batch.condition, batch.tokens, batch.lengths)
        return token_cross_entropy(logits, batch.targets)

    def generate(
        self,
        condition: int | list[float] | Tensor,
        max_length: int,
        *,
        prime_ids: list[int] | None = None,
        stop_id: int | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        banned_ids: tuple[int, ...] = (),
    ) -> list[int]:
        """Sample one sequence for ``condition`` (a class id or a vector), starting from BOS and
        optional ``prime_ids``; stops before ``stop_id`` (default: EOS). Returns new ids only.
        Sampling options as in :meth:`LanguageModel.generate`."""
        options = SamplingOptions(temperature, top_k, top_p, seed, banned_ids)
        device = self.output.weight.device
        is_class = self.config.condition_type == "class"
        condition = torch.as_tensor(
            condition, device=device, dtype=torch.int64 if is_class else torch.float32
        )
        start = torch.tensor([[self.config.bos_id, *(prime_ids or [])]], device=device)
        stop_id = self.config.eos_id if stop_id is None else stop_id
        with eval_mode(self):
            condition = condition.reshape(1, *([] if is_class else [-1]))
            logits, state = self(condition, start)  # (1, 1 + prime, vocab)
            encoded = self.encode_condition(condition)

            def step(token: Tensor, state: State) -> tuple[Tensor, State]:
                inputs = self._inputs(token.unsqueeze(1), encoded).squeeze(1)  # (1, input)
                output, state = self.rnn.step(inputs, state)
                return self.output(output), state

            return sample_sequence(step, logits[:, -1], state, max_length, options, stop_id)
