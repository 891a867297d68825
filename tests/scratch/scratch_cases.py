"""Shared cases for the scratch tests: networks under test, random inputs and a weighted loss.

Every test loss is ``sum(w_out * output) + sum(w_h * h_n) (+ sum(w_c * c_n))`` with fixed random
weights ``w``, so its gradient with respect to ``output``, ``h_n`` and ``c_n`` is exactly ``w``
and every entry of every gradient is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnkit import scratch

SEQ, BATCH, INPUT, HIDDEN, PROJ = 4, 2, 3, 4, 2
LENGTHS = [4, 2]  # a padded batch: the second row is valid for 2 of the SEQ steps


def as_tuple(state: Any) -> tuple:
    """A state as a tuple of arrays: ``(h,)`` or ``(h, c)``."""
    return state if isinstance(state, tuple) else (state,)


def like_state(parts: list[np.ndarray], template: Any) -> Any:
    """``parts`` in the structure of ``template`` (a tuple for an LSTM, else one array)."""
    return tuple(parts) if isinstance(template, tuple) else parts[0]


@dataclass
class Problem:
    """A network with inputs, an initial state and loss weights for its outputs and states."""

    net: Any
    inputs: np.ndarray
    state: Any
    weights: list[np.ndarray]  # for output, then each part of the final state
    forward_options: dict[str, Any] = field(default_factory=dict)  # e.g. lengths= for a stack

    def loss(self) -> float:
        output, final_state, _ = self.net.forward(self.inputs, self.state, **self.forward_options)
        parts = [output, *as_tuple(final_state)]
        return float(sum(np.sum(w * p) for w, p in zip(self.weights, parts, strict=True)))

    def analytic(self) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
        """``(grad_inputs, grad_state, grads)`` from the hand-written backward pass."""
        _, final_state, cache = self.net.forward(self.inputs, self.state, **self.forward_options)
        grad_final = like_state(self.weights[1:], final_state)
        return self.net.backward(cache, self.weights[0], grad_final)


def make_problem(net: Any, rng: np.random.Generator, **forward_options: Any) -> Problem:
    """Random inputs, initial state and loss weights sized for ``net`` (a layer or a stack)."""
    inputs = rng.standard_normal((SEQ, BATCH, net.input_size))
    zero_output, zero_state, _ = net.forward(inputs)
    state = like_state([rng.standard_normal(p.shape) for p in as_tuple(zero_state)], zero_state)
    parts = [zero_output, *as_tuple(zero_state)]
    weights = [rng.standard_normal(p.shape) for p in parts]
    return Problem(net, inputs, state, weights, forward_options)


LAYERS = {
    "rnn_tanh": lambda rng: scratch.RNNLayer(INPUT, HIDDEN, rng=rng),
    "rnn_relu": lambda rng: scratch.RNNLayer(INPUT, HIDDEN, nonlinearity="relu", rng=rng),
    "rnn_no_bias": lambda rng: scratch.RNNLayer(INPUT, HIDDEN, bias=False, rng=rng),
    "lstm": lambda rng: scratch.LSTMLayer(INPUT, HIDDEN, rng=rng),
    "lstm_proj": lambda rng: scratch.LSTMLayer(INPUT, HIDDEN, proj_size=PROJ, rng=rng),
    "lstm_no_bias": lambda rng: scratch.LSTMLayer(INPUT, HIDDEN, bias=False, rng=rng),
    "gru": lambda rng: scratch.GRULayer(INPUT, HIDDEN, rng=rng),
    "gru_no_bias": lambda rng: scratch.GRULayer(INPUT, HIDDEN, bias=False, rng=rng),
}
"""Single layers, one per cell variant."""

STACKS = {
    "rnn_2x_bi": lambda rng: scratch.RNN(INPUT, HIDDEN, 2, bidirectional=True, rng=rng),
    "lstm_proj_2x_bi": lambda rng: scratch.LSTM(
        INPUT, HIDDEN, 2, bidirectional=True, proj_size=PROJ, rng=rng
    ),
    "gru_2x_bi": lambda rng: scratch.GRU(INPUT, HIDDEN, 2, bidirectional=True, rng=rng),
}
"""Multi-layer, bidirectional stacks."""
