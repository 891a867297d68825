"""Batched beam search over any decoder exposed as a step function.

Hypotheses are scored by their summed log-probability divided by the GNMT length penalty
``lp(n) = ((5 + n) / 6) ** alpha`` (Wu et al. 2016), where ``n`` counts generated tokens
including EOS. ``alpha = 0`` ranks by raw log-probability (favouring short outputs);
``alpha = 1`` is close to per-token length normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

BeamStep = Callable[[Tensor, Any], tuple[Tensor, Any, Tensor | None]]
"""``step(tokens (rows,), state)`` → ``(log_probs (rows, vocab), state, attention (rows, src))``;
attention may be ``None``."""


@dataclass
class Decoded:
    """Decoder output for a batch.

    - ``tokens``: ``(batch, length)`` generated ids without BOS/EOS, ``pad_id`` after each row.
    - ``lengths``: ``(batch,)`` number of real tokens per row.
    - ``scores``: ``(batch,)`` summed log-probability of each output (EOS included if produced).
    - ``attention``: ``(batch, length, src)`` weights per generated token, or ``None``.
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor
    attention: Tensor | None


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ``((5 + n) / 6) ** alpha`` for lengths ``n``."""
    return ((5.0 + lengths.to(torch.float32)) / 6.0) ** alpha


def finalise(
    tokens: Tensor, scores: Tensor, attention: Tensor | None, eos_id: int, pad_id: int
) -> Decoded:
    """Strip EOS and what follows from ``tokens`` ``(batch, steps)`` into a :class:`Decoded`."""
    is_eos = tokens == eos_id
    after_eos = is_eos.cumsum(dim=1) > 0  # (batch, steps): at or after the first EOS
    lengths = (~after_eos).sum(dim=1)
    width = int(lengths.max()) if lengths.numel() else 0
    tokens = tokens.masked_fill(after_eos, pad_id)[:, :width]
    if attention is not None:
        attention = attention.masked_fill(after_eos.unsqueeze(-1), 0.0)[:, :width]
    return Decoded(tokens, lengths, scores, attention)


def _mask_finished(log_probs: Tensor, finished: Tensor, eos_id: int) -> Tensor:
    """A finished row can only repeat EOS, at no cost, so its score stays fixed."""
    frozen = torch.full_like(log_probs, float("-inf"))
    frozen[:, eos_id] = 0.0
    return torch.where(finished.unsqueeze(1), frozen, log_probs)


@dataclass
class _Beams:
    """The final beams: ``history`` ``(rows, steps)``, ``scores``/``lengths`` ``(batch, beam)``,
    ``attention`` ``(rows, steps, src)`` or ``None``; beams of one example adjacent."""

    history: Tensor
    scores: Tensor
    lengths: Tensor
    attention: Tensor | None


def beam_search(
    step: BeamStep,
    state: Any,
    reorder_state: Callable[[Any, Tensor], Any],
    *,
    batch_size: int,
    beam_size: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_length: int,
    alpha: float = 0.0,
) -> Decoded:
    """Best hypothesis per example. ``state`` covers ``batch_size * beam_size`` rows, beams of
    one example adjacent; ``reorder_state(state, rows)`` selects rows ``(batch * beam,)``."""
    return beam_search_n_best(
        step, state, reorder_state, batch_size=batch_size, beam_size=beam_size, bos_id=bos_id,
        eos_id=eos_id, pad_id=pad_id, max_length=max_length, alpha=alpha, n_best=1)[0]


def beam_search_n_best(
    step: BeamStep,
    state: Any,
    reorder_state: Callable[[Any, Tensor], Any],
    *,
    batch_size: int,
    beam_size: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_length: int,
    alpha: float = 0.0,
    n_best: int = 1,
) -> list[Decoded]:
    """The ``n_best`` (<= ``beam_size``) highest-ranked hypotheses per example, best first:
    element ``i`` holds every example's ``i``-th. Arguments as :func:`beam_search`."""
    if not isinstance(n_best, int) or not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best: expected an integer in [1, beam_size={beam_size}], "
                         f"got {n_best!r}")
    beams = _search(step, state, reorder_state, batch_size, beam_size, bos_id, eos_id,
                    max_length, alpha)
    ranked_final = beams.scores / length_penalty(beams.lengths, alpha)  # (batch, beam)
    order = ranked_final.argsort(dim=1, descending=True, stable=True)[:, :n_best]
    offsets = torch.arange(batch_size, device=order.device) * beam_size
    flat_scores = beams.scores.reshape(-1)
    results = []
    for rank in range(n_best):
        rows = offsets + order[:, rank]  # (batch,)
        attention = None if beams.attention is None else beams.attention[rows]
        results.append(finalise(beams.history[rows], flat_scores[rows], attention, eos_id,
                                pad_id))
    return results


def _search(step: BeamStep, state: Any, reorder_state: Callable[[Any, Tensor], Any],
            batch_size: int, beam_size: int, bos_id: int, eos_id: int, max_length: int,
            alpha: float) -> _Beams:
    """Run the beams until every one has produced EOS or ``max_length`` steps."""
    rows = batch_size * beam_size
    device = _device_of(state)
    tokens = torch.full((rows,), bos_id, dtype=torch.int64, device=device)
    scores = torch.full((batch_size, beam_size), float("-inf"), device=device)
    scores[:, 0] = 0.0  # only the first beam is live at the start
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    lengths = torch.zeros(rows, dtype=torch.int64, device=device)
    history = torch.zeros(rows, 0, dtype=torch.int64, device=device)
    attention_history: Tensor | None = None
    offsets = (torch.arange(batch_size, device=device) * beam_size).unsqueeze(1)  # (batch, 1)
    for _ in range(max_length):
        log_probs, state, attention = step(tokens, state)  # (rows, vocab)
        vocab = log_probs.shape[-1]
        log_probs = _mask_finished(log_probs, finished, eos_id)
        candidates = scores.reshape(rows, 1) + log_probs  # (rows, vocab)
        new_lengths = (lengths + (~finished).long()).unsqueeze(1).expand(rows, vocab)
        ranked = candidates / length_penalty(new_lengths, alpha)
        best = ranked.reshape(batch_size, -1).topk(beam_size, dim=1).indices  # (batch, beam)
        source_rows = (offsets + best // vocab).reshape(rows)
        tokens = (best % vocab).reshape(rows)
        scores = candidates.reshape(batch_size, -1).gather(1, best)
        lengths = new_lengths[source_rows, 0]
        finished = finished[source_rows] | (tokens == eos_id)
        history = torch.cat([history[source_rows], tokens.unsqueeze(1)], dim=1)
        if attention is not None:
            step_attention = attention[source_rows].unsqueeze(1)  # (rows, 1, src)
            attention_history = (
                step_attention
                if attention_history is None
                else torch.cat([attention_history[source_rows], step_attention], dim=1)
            )
        state = reorder_state(state, source_rows)
        if bool(finished.all()):
            break
    return _Beams(history, scores, lengths.reshape(batch_size, beam_size), attention_history)


def _device_of(state: Any) -> torch.device:
    while isinstance(state, tuple | list):
        state = state[0]
    return state.device
