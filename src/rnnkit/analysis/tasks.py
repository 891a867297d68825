"""Synthetic tasks with a known dependency length, and a small model to learn them.

- :class:`RecallTask`: a symbol is shown at step 0, then ``delay`` blank steps, then a query;
  the answer (the symbol) is read at the query step. Only the first step matters, exactly
  ``delay + 1`` steps before the loss: a clean test of memory.
- :class:`AddingTask` (Hochreiter & Schmidhuber, 1997): ``length`` random values, two of them
  marked (one in each half); the target is their sum. Predicting 1 always scores MSE ≈ 0.167.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit import nn as rnn_layers

CELLS = {"rnn": rnn_layers.RNN, "lstm": rnn_layers.LSTM, "gru": rnn_layers.GRU}


@dataclass(frozen=True)
class RecallTask:
    """Recall the first symbol after ``delay`` blank steps; classification over ``num_symbols``.

    Inputs ``(batch, delay + 2, num_symbols + 2)`` one-hot (last two channels: blank, query);
    targets ``(batch,)`` symbol ids.
    """

    delay: int
    num_symbols: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.delay, int) or self.delay < 0:
            raise ValueError(f"delay: expected an integer >= 0, got {self.delay!r}")
        if not isinstance(self.num_symbols, int) or self.num_symbols < 2:
            raise ValueError(f"num_symbols: expected an integer >= 2, got {self.num_symbols!r}")

    kind = "classification"

    @property
    def input_size(self) -> int:
        return self.num_symbols + 2

    @property
    def output_size(self) -> int:
        return self.num_symbols

    @property
    def seq_len(self) -> int:
        return self.delay + 2

    @property
    def chance(self) -> float:
        return 1.0 / self.num_symbols

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(inputs (batch, seq, input_size), targets (batch,))``."""
        symbols = torch.randint(self.num_symbols, (batch_size,), generator=generator)
        channels = torch.full((batch_size, self.seq_len), self.num_symbols)  # blank
        channels[:, 0] = symbols
        channels[:, -1] = self.num_symbols + 1  # query
        return F.one_hot(channels, self.input_size).float(), symbols


@dataclass(frozen=True)
class AddingTask:
    """The adding problem over ``length`` steps: inputs ``(batch, length, 2)`` (value, marker),
    targets ``(batch,)`` the sum of the two marked values."""

    length: int

    def __post_init__(self) -> None:
        if not isinstance(self.length, int) or self.length < 2:
            raise ValueError(f"length: expected an integer >= 2, got {self.length!r}")

    kind = "regression"
    input_size = 2
    output_size = 1

    @property
    def seq_len(self) -> int:
        return self.length

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        values = torch.rand(batch_size, self.length, generator=generator)
        half = self.length // 2
        first = torch.randint(half, (batch_size,), generator=generator)
        second = torch.randint(half, self.length, (batch_size,), generator=generator)
        markers = torch.zeros(batch_size, self.length)
        rows = torch.arange(batch_size)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        targets = (values * markers).sum(dim=1)
        return torch.stack([values, markers], dim=2), targets


class LastStepModel(nn.Module):
    """A recurrent layer read out at the last step: ``(batch, seq, input)`` → ``(batch, out)``."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
        self.cell = cell
        self.rnn = CELLS[cell](input_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: Tensor) -> Tensor:
        outputs, _ = self.rnn(inputs)
        return self.readout(outputs[:, -1])


def task_loss(task: RecallTask | AddingTask, predictions: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy for recall, mean squared error for adding."""
    if task.kind == "classification":
        return F.cross_entropy(predictions, targets)
    return F.mse_loss(predictions.squeeze(-1), targets)


def task_score(task: RecallTask | AddingTask, predictions: Tensor, targets: Tensor) -> float:
    """Accuracy for recall; mean squared error for adding."""
    if task.kind == "classification":
        return float((predictions.argmax(dim=-1) == targets).float().mean())
    return float(F.mse_loss(predictions.squeeze(-1), targets))


def chrono_initialise(layer: rnn_layers.RecurrentBase, max_delay: int,
                      generator: torch.Generator) -> None:
    """Chrono initialisation (Tallec & Ollivier, 2018) of an LSTM's or GRU's gate biases.

    The gate that keeps the state (LSTM forget gate, GRU update gate ``z``) gets bias
    ``log(u)`` with ``u ~ U(1, max_delay - 1)``, so units start out remembering over time
    scales up to ``max_delay`` steps; the LSTM input gate gets the opposite bias. A vanilla RNN
    has no gate, so nothing can be set: that asymmetry is what the demonstration shows.
    """
    if layer.mode not in ("LSTM", "GRU"):
        raise ValueError(f"layer: chrono initialisation needs an LSTM or GRU, got {layer.mode}")
    if not isinstance(max_delay, int) or max_delay < 3:
        raise ValueError(f"max_delay: expected an integer >= 3, got {max_delay!r}")
    size = layer.hidden_size
    with torch.no_grad():
        for layer_index in range(layer.num_layers):
            for direction in range(layer.num_directions):
                weights = layer.direction_weights(layer_index, direction)
                if weights.bias_ih is None:
                    raise ValueError("layer: chrono initialisation needs bias=True")
                uniform = torch.rand(size, generator=generator) * (max_delay - 2) + 1
                keep_bias = torch.log(uniform).to(weights.bias_ih)
                keep = slice(size, 2 * size)  # LSTM forget gate (i, f, g, o); GRU update (r, z, n)
                weights.bias_ih[keep] = keep_bias
                weights.bias_hh[keep] = 0.0
                if layer.mode == "LSTM":
                    weights.bias_ih[:size] = -keep_bias
                    weights.bias_hh[:size] = 0.0
