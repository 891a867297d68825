"""The readable time loop: one layer, one direction, over a whole padded sequence.

This is rnnkit's ``python`` backend. It runs the step functions of
:mod:`rnnkit.nn.functional` once per time step, honours per-row ``lengths`` and implements the
regularisers that no fused kernel has (variational recurrent dropout and zoneout). The native
engine implements the same contract for the unregularised case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.nn.functional import DirectionWeights, cell_step, input_gates


@dataclass(frozen=True)
class Regularisation:
    """Training-time regularisers of the recurrent connection.

    - ``recurrent_dropout``: probability of zeroing a unit of ``h_{t-1}`` before ``W_hh``, with
      one mask per sequence (variational dropout, Gal & Ghahramani 2016).
    - ``zoneout``: probability that a unit keeps its previous value at a step (Krueger et al.
      2017); in evaluation the update is the expectation ``p h_{t-1} + (1-p) h_t``.
    """

    recurrent_dropout: float = 0.0
    zoneout: float = 0.0

    @property
    def active(self) -> bool:
        return self.recurrent_dropout > 0 or self.zoneout > 0


NO_REGULARISATION = Regularisation()


def step_mask(lengths: Tensor | None, seq_len: int, device: torch.device) -> Tensor | None:
    """``(seq, batch, 1)`` boolean mask of valid steps, or ``None`` when every row is full."""
    if lengths is None:
        return None
    steps = torch.arange(seq_len, device=device).unsqueeze(1)
    return (steps < lengths.to(device).unsqueeze(0)).unsqueeze(2)


def dropout_mask(like: Tensor, probability: float) -> Tensor:
    """A Bernoulli keep-mask scaled by ``1 / (1 - p)``, the shape of ``like``."""
    keep = torch.empty_like(like).bernoulli_(1.0 - probability)
    return keep / (1.0 - probability)


def zoneout_update(
    previous: Tensor, proposed: Tensor, probability: float, training: bool
) -> Tensor:
    """Mix the previous and proposed state: random per unit in training, expected in eval."""
    if training:
        keep_previous = torch.empty_like(proposed).bernoulli_(probability)
        return torch.lerp(proposed, previous, keep_previous)
    return torch.lerp(proposed, previous, probability)


def run_direction(
    mode: str,
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    weights: DirectionWeights,
    lengths: Tensor | None = None,
    reverse: bool = False,
    regularisation: Regularisation = NO_REGULARISATION,
    training: bool = False,
    observer: Callable[[int, Tensor, Tensor | None], None] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one layer in one direction over ``x``.

    - ``x``: ``(seq, batch, input)``; ``h0``: ``(batch, P)``; ``c0``: ``(batch, H)`` or ``None``.
    - ``lengths``: ``(batch,)`` int64 or ``None``. Steps ``t >= lengths[b]`` leave row ``b``'s
      state untouched and output zeros, so the forward direction ends at each row's last valid
      step and the reverse direction starts there.
    - ``observer``: called as ``observer(t, h_t, c_t)`` after every step with the state the
      next step reads (graph nodes, so analysis tools can take gradients with respect to them).
    - Returns ``(output (seq, batch, P), h_n (batch, P), c_n (batch, H) or None)``.
    """
    seq_len = x.shape[0]
    gates_x = input_gates(x, weights)  # (seq, batch, G*H): one GEMM for all steps
    valid = step_mask(lengths, seq_len, x.device)
    recurrent_mask = None
    if training and regularisation.recurrent_dropout > 0:
        recurrent_mask = dropout_mask(h0, regularisation.recurrent_dropout)

    h, c = h0, c0
    outputs: list[Tensor | None] = [None] * seq_len
    for t in (range(seq_len - 1, -1, -1) if reverse else range(seq_len)):
        h_in = h if recurrent_mask is None else h * recurrent_mask
        h_next, c_next = cell_step(mode, gates_x[t], h_in, c, weights)
        if regularisation.zoneout > 0:
            h_next = zoneout_update(h, h_next, regularisation.zoneout, training)
            if c_next is not None:
                c_next = zoneout_update(c, c_next, regularisation.zoneout, training)
        if valid is None:
            h, c, outputs[t] = h_next, c_next, h_next
        else:
            h = torch.where(valid[t], h_next, h)
            c = None if c_next is None else torch.where(valid[t], c_next, c)
            outputs[t] = torch.where(valid[t], h_next, 0.0)
        if observer is not None:
            observer(t, h, c)
    output = torch.stack(outputs) if seq_len else x.new_zeros(0, *h0.shape)  # type: ignore[arg-type]
    return output, h, c
