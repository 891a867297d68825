"""Encoder-decoder (seq2seq) with optional attention, teacher forcing, greedy and beam search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.data.batch import IGNORE_INDEX, PairBatch
from rnnkit.models._config import RecurrentOptions, expect_config, require
from rnnkit.models._recurrent import (
    State,
    build_rnn,
    embed_tokens,
    eval_mode,
    final_hidden,
    map_state,
)
from rnnkit.models.attention import Attention, AttentionKind
from rnnkit.models.beam_search import Decoded, beam_search_n_best, finalise
from rnnkit.models.encoder import SequenceEncoder, check_lengths
from rnnkit.models.losses import token_cross_entropy
from rnnkit.models.pooling import valid_mask
from rnnkit.models.teacher_forcing import TeacherForcingSchedule


@dataclass(kw_only=True)
class Seq2SeqConfig(RecurrentOptions):
    """Settings of :class:`Seq2Seq`. ``cell``, ``hidden_size`` and ``num_layers`` apply to both
    encoder and decoder.

    - ``bidirectional``: bidirectional encoder; a learned bridge (linear + tanh) maps both
      directions' final states to the decoder's initial state.
    - ``attention``: ``'none'``, ``'bahdanau'`` (additive; query is the previous decoder state,
      context is fed to the decoder input), ``'luong_dot'`` / ``'luong_general'`` (query is the
      current decoder output; no input feeding). Padded source positions get zero weight.
    - ``bos_id`` / ``eos_id`` / ``pad_id``: target vocabulary specials.
    - ``teacher_forcing_*``: :class:`TeacherForcingSchedule` used by :meth:`Seq2Seq.loss`
      after :meth:`Seq2Seq.set_training_step`.
    """

    source_vocab_size: int
    target_vocab_size: int
    bos_id: int
    eos_id: int
    pad_id: int = 0
    embedding_size: int = 64
    bidirectional: bool = True
    attention: AttentionKind = "bahdanau"
    teacher_forcing_start: float = 1.0
    teacher_forcing_floor: float = 1.0
    teacher_forcing_decay_steps: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("source_vocab_size", "target_vocab_size", "embedding_size"):
            require(getattr(self, name) >= 1, self, name, "an integer >= 1")
        for name in ("bos_id", "eos_id", "pad_id"):
            value_ok = 0 <= getattr(self, name) < self.target_vocab_size
            require(
                value_ok, self, name, f"an id in [0, target_vocab_size={self.target_vocab_size})"
            )
        self.teacher_forcing()  # validates the schedule fields

    def teacher_forcing(self) -> TeacherForcingSchedule:
        """The configured teacher-forcing schedule."""
        return TeacherForcingSchedule(
            self.teacher_forcing_start, self.teacher_forcing_floor, self.teacher_forcing_decay_steps
        )


class Memory(NamedTuple):
    """What the decoder attends to: encoder ``outputs`` ``(batch, src, directions * hidden)``,
    their ``projected`` keys and the valid-position ``mask`` ``(batch, src)``."""

    outputs: Tensor
    projected: Tensor
    mask: Tensor

    def select(self, rows: Tensor) -> Memory:
        return Memory(*(part.index_select(0, rows) for part in self))


class StateBridge(nn.Module):
    """Maps a bidirectional encoder state ``(layers * 2, batch, hidden)`` to a decoder state
    ``(layers, batch, hidden)``: per layer, ``tanh(W [h_forward; h_reverse] + b)``."""

    def __init__(self, hidden_size: int, lstm: bool) -> None:
        super().__init__()
        self.hidden = nn.Linear(2 * hidden_size, hidden_size)
        self.cell = nn.Linear(2 * hidden_size, hidden_size) if lstm else None

    @staticmethod
    def _join_directions(state: Tensor) -> Tensor:
        layers2, batch, hidden = state.shape
        joined = state.reshape(layers2 // 2, 2, batch, hidden)  # (layers, 2, batch, hidden)
        return joined.permute(0, 2, 1, 3).reshape(layers2 // 2, batch, 2 * hidden)

    def forward(self, state: State) -> State:
        if isinstance(state, tuple):
            h, c = state
            return (
                torch.tanh(self.hidden(self._join_directions(h))),
                torch.tanh(self.cell(self._join_directions(c))),  # type: ignore[misc]
            )
        return torch.tanh(self.hidden(self._join_directions(state)))


class Seq2Seq(nn.Module):
    """``forward(source (batch, src), source_lengths, target_inputs (batch, tgt))`` → logits
    ``(batch, tgt, target_vocab)`` and attention ``(batch, tgt, src)`` (``None`` without)."""

    model_type = "seq2seq"

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = expect_config(config, Seq2SeqConfig)
        self.teacher_forcing_ratio = config.teacher_forcing().ratio(0)
        self.encoder = SequenceEncoder(
            config, config.source_vocab_size, config.embedding_size, config.bidirectional
        )
        context_size = self.encoder.output_size
        self.bridge = (
            StateBridge(config.hidden_size, config.cell == "lstm") if config.bidirectional else None
        )
        self.target_embedding = nn.Embedding(config.target_vocab_size, config.embedding_size)
        feeds_context = config.attention == "bahdanau"
        decoder_input = config.embedding_size + (context_size if feeds_context else 0)
        self.decoder = build_rnn(config, decoder_input)
        self.attention = None
        self.combine = None
        if config.attention != "none":
            self.attention = Attention(config.attention, config.hidden_size, context_size)
            self.combine = nn.Linear(config.hidden_size + context_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size, config.target_vocab_size)

    def set_training_step(self, step: int) -> None:
        """Set the teacher-forcing ratio from the configured schedule for training ``step``."""
        self.teacher_forcing_ratio = self.config.teacher_forcing().ratio(step)

    def encode(self, source: Tensor, source_lengths: Tensor | None) -> tuple[Memory, State]:
        """Encode ``source`` ``(batch, src)``: attention memory and the decoder's first state."""
        lengths = check_lengths(source_lengths, source, "source_lengths")
        outputs, state = self.encoder(source, lengths)  # (batch, src, directions * hidden)
        if self.bridge is not None:
            state = self.bridge(state)  # (layers, batch, hidden)
        projected = outputs if self.attention is None else self.attention.prepare_keys(outputs)
        return Memory(
            outputs, projected, valid_mask(lengths.to(source.device), source.shape[1])
        ), state

    def _attend(self, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        return self.attention(query, memory.outputs, memory.projected, memory.mask)  # type: ignore[misc]

    def _logits(self, decoder_output: Tensor, context: Tensor | None) -> Tensor:
        """Vocabulary logits from decoder outputs ``(..., hidden)`` and contexts ``(..., ctx)``."""
        if context is not None:
            decoder_output = torch.tanh(self.combine(torch.cat([decoder_output, context], dim=-1)))  # type: ignore[misc]
        return self.output(self.dropout(decoder_output))

    def decode_step(
        self, tokens: Tensor, state: State, memory: Memory | None
    ) -> tuple[Tensor, State, Tensor | None]:
        """One decoder step: previous tokens ``(batch,)`` → logits ``(batch, vocab)``, the new
        state and attention weights ``(batch, src)`` (``None`` without attention)."""
        embedded = self.dropout(embed_tokens(self.target_embedding, tokens, "target"))
        context = weights = None
        if self.config.attention == "bahdanau":
            context, weights = self._attend(final_hidden(state)[-1], memory)  # (batch, ctx)
            embedded = torch.cat([embedded, context], dim=-1)
        output, state = self.decoder.step(embedded, state)  # (batch, hidden)
        if self.config.attention.startswith("luong"):
            context, weights = self._attend(output, memory)
        return self._logits(output, context), state, weights

    def _decode_parallel(
        self, target_inputs: Tensor, state: State, memory: Memory
    ) -> tuple[Tensor, Tensor | None]:
        """Full teacher forcing when the decoder input does not depend on attention: the whole
        target runs through the RNN at once (same result as stepping)."""
        embedded = self.dropout(embed_tokens(self.target_embedding, target_inputs, "target"))
        outputs, _ = self.decoder(embedded, state)  # (batch, tgt, hidden)
        context = weights = None
        if self.attention is not None:
            context, weights = self._attend(outputs, memory)  # (batch, tgt, ctx), (b, tgt, src)
        return self._logits(outputs, context), weights

    def _decode_stepwise(
        self, target_inputs: Tensor, state: State, memory: Memory, teacher_forcing_ratio: float
    ) -> tuple[Tensor, Tensor | None]:
        """Decode step by step; at each step a row gets the true previous token with probability
        ``teacher_forcing_ratio`` and otherwise its own greedy prediction."""
        all_logits, all_weights = [], []
        tokens = target_inputs[:, 0]
        for t in range(target_inputs.shape[1]):
            if t > 0:
                own = all_logits[-1].argmax(dim=-1)
                use_truth = torch.rand(own.shape, device=own.device) < teacher_forcing_ratio
                tokens = torch.where(use_truth, target_inputs[:, t], own)
            logits, state, weights = self.decode_step(tokens, state, memory)
            all_logits.append(logits)
            all_weights.append(weights)
        logits = torch.stack(all_logits, dim=1)  # (batch, tgt, vocab)
        attention = None if self.attention is None else torch.stack(all_weights, dim=1)
        return logits, attention

    def forward(
        self,
        source: Tensor,
        source_lengths: Tensor | None,
        target_inputs: Tensor,
        teacher_forcing_ratio: float = 1.0,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits ``(batch, tgt, vocab)`` for each next target token and attention weights
        ``(batch, tgt, src)``. ``target_inputs`` starts with BOS."""
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(
                "teacher_forcing_ratio: expected a probability in [0, 1], "
                f"got {teacher_forcing_ratio!r}"
            )
        memory, state = self.encode(source, source_lengths)
        if teacher_forcing_ratio == 1.0 and self.config.attention != "bahdanau":
            return self._decode_parallel(target_inputs, state, memory)
        return self._decode_stepwise(target_inputs, state, memory, teacher_forcing_ratio)

    def loss(self, batch: PairBatch) -> Tensor:
        """Mean cross-entropy of each next target token; uses :attr:`teacher_forcing_ratio` in
        training mode and full teacher forcing in eval mode."""
        target_inputs, target_outputs = batch.target[:, :-1], batch.target[:, 1:]
        predicted_steps = (batch.target_lengths - 1).to(batch.target.device)
        valid = valid_mask(predicted_steps, target_outputs.shape[1])  # (batch, tgt - 1)
        ratio = self.teacher_forcing_ratio if self.training else 1.0
        logits, _ = self(batch.source, batch.source_lengths, target_inputs, ratio)
        return token_cross_entropy(logits, target_outputs.masked_fill(~valid, IGNORE_INDEX))

    def _default_max_length(self, source: Tensor, max_length: int | None) -> int:
        if max_length is None:
            return 2 * source.shape[1] + 10
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length: expected an integer >= 1, got {max_length!r}")
        return max_length

    def greedy_decode(
        self, source: Tensor, source_lengths: Tensor | None = None, max_length: int | None = None
    ) -> Decoded:
        """Most likely token at each step until EOS or ``max_length`` (default ``2 * src + 10``)."""
        max_length = self._default_max_length(source, max_length)
        with eval_mode(self):
            return self._greedy(source, source_lengths, max_length)

    def _greedy(self, source: Tensor, source_lengths: Tensor | None, max_length: int) -> Decoded:
        memory, state = self.encode(source, source_lengths)
        tokens = torch.full((source.shape[0],), self.config.bos_id, device=source.device)
        finished = torch.zeros_like(tokens, dtype=torch.bool)
        scores = torch.zeros(source.shape[0], device=source.device)
        history, attention = [], []
        for _ in range(max_length):
            logits, state, weights = self.decode_step(tokens, state, memory)
            log_probs = logits.log_softmax(dim=-1)
            tokens = log_probs.argmax(dim=-1)
            scores += torch.where(finished, 0.0, log_probs.gather(1, tokens[:, None]).squeeze(1))
            finished |= tokens == self.config.eos_id
            history.append(tokens)
            attention.append(weights)
            if bool(finished.all()):
                break
        stacked_attention = None if self.attention is None else torch.stack(attention, dim=1)
        return finalise(
            torch.stack(history, dim=1),
            scores,
            stacked_attention,
            self.config.eos_id,
            self.config.pad_id,
        )

    def beam_decode(
        self,
        source: Tensor,
        source_lengths: Tensor | None = None,
        beam_size: int = 4,
        max_length: int | None = None,
        length_penalty: float = 0.0,
    ) -> Decoded:
        """Beam search; ``length_penalty`` is the GNMT ``alpha`` (see :mod:`.beam_search`)."""
        return self.beam_decode_n_best(source, source_lengths, beam_size, 1, max_length,
                                       length_penalty)[0]

    def beam_decode_n_best(
        self,
        source: Tensor,
        source_lengths: Tensor | None = None,
        beam_size: int = 4,
        n_best: int = 1,
        max_length: int | None = None,
        length_penalty: float = 0.0,
    ) -> list[Decoded]:
        """The ``n_best`` (<= ``beam_size``) best hypotheses of a beam search, best first;
        element ``i`` holds each example's ``i``-th (``scores``: summed log-probabilities)."""
        if not isinstance(beam_size, int) or beam_size < 1:
            raise ValueError(f"beam_size: expected an integer >= 1, got {beam_size!r}")
        if length_penalty < 0:
            raise ValueError(f"length_penalty: expected a number >= 0, got {length_penalty!r}")
        max_length = self._default_max_length(source, max_length)
        with eval_mode(self):
            return self._beam(source, source_lengths, beam_size, n_best, max_length,
                              length_penalty)

    def _beam(
        self,
        source: Tensor,
        source_lengths: Tensor | None,
        beam_size: int,
        n_best: int,
        max_length: int,
        length_penalty: float,
    ) -> list[Decoded]:
        memory, state = self.encode(source, source_lengths)
        # Beams of one example are adjacent rows; their memory rows are identical, so
        # reordering beams never needs to move the memory.
        rows = torch.arange(source.shape[0], device=source.device).repeat_interleave(beam_size)
        memory = memory.select(rows)
        state = map_state(state, lambda part: part.index_select(1, rows))

        def step(tokens: Tensor, state: State) -> tuple[Tensor, State, Tensor | None]:
            logits, state, weights = self.decode_step(tokens, state, memory)
            return logits.log_softmax(dim=-1), state, weights

        return beam_search_n_best(
            step,
            state,
            lambda state, order: map_state(state, lambda part: part.index_select(1, order)),
            batch_size=source.shape[0],
            beam_size=beam_size,
            bos_id=self.config.bos_id,
            eos_id=self.config.eos_id,
            pad_id=self.config.pad_id,
            max_length=max_length,
            alpha=length_penalty,
            n_best=n_best,
        )
