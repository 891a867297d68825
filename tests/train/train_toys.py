"""Tiny models, batch sources and loss functions for the training-loop tests.

Defined here rather than imported from rnnkit.models/rnnkit.data so the loop is tested on its
contract alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rnnkit.train import Callback, StepRecord, TrainConfig


@dataclass
class PairBatch:
    """``x``: ``(batch, ...)`` inputs, ``y``: ``(batch, ...)`` targets."""

    x: torch.Tensor
    y: torch.Tensor

    def to(self, device):
        return PairBatch(self.x.to(device), self.y.to(device))

    def __len__(self) -> int:
        return self.x.shape[0]


class RegressionSource:
    """A fixed noisy linear regression set, reshuffled each epoch by ``(seed, epoch)``."""

    def __init__(self, batches: int = 8, batch_size: int = 16, features: int = 4, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(batches * batch_size, features, generator=generator)
        weights = torch.randn(features, 1, generator=generator)
        self.y = self.x @ weights + 0.01 * torch.randn(len(self.x), 1, generator=generator)
        self.batch_size = batch_size
        self.seed = seed
        self.epochs_started: list[int] = []

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def iter_epoch(self, epoch: int):
        self.epochs_started.append(epoch)
        order = torch.randperm(
            len(self.x), generator=torch.Generator().manual_seed(self.seed + epoch)
        )
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield PairBatch(self.x[index], self.y[index])


class Regressor(nn.Module):
    """An MLP with dropout (so resume must restore torch's RNG) and a ``loss`` method."""

    def __init__(self, features: int = 4, hidden: int = 16, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, batch: PairBatch) -> torch.Tensor:
        return nn.functional.mse_loss(self(batch.x), batch.y)


class SequenceSource:
    """One long sine-like series cut into consecutive ``(batch, seq, 1)`` chunks: batch ``i+1``
    continues batch ``i`` in time, as in truncated BPTT over a long text."""

    def __init__(self, batches: int = 6, batch_size: int = 4, seq: int = 5):
        total = batches * seq + 1
        time = torch.arange(batch_size * total, dtype=torch.float32)
        series = torch.sin(0.3 * time) + 0.1 * torch.cos(1.7 * time)
        self.streams = series.reshape(batch_size, total, 1)
        self.batches, self.seq = batches, seq

    def __len__(self) -> int:
        return self.batches

    def iter_epoch(self, epoch: int):
        for i in range(self.batches):
            chunk = self.streams[:, i * self.seq : (i + 1) * self.seq + 1]
            yield PairBatch(chunk[:, :-1], chunk[:, 1:])


class SequenceModel(nn.Module):
    """A one-layer RNN with a linear read-out and dropout on its outputs."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.rnn = nn.RNN(1, hidden, batch_first=True)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(hidden, 1)


class CarriedHiddenLoss:
    """Truncated-BPTT loss: the hidden state is carried (detached) across consecutive batches.

    It also draws input jitter from NumPy's and Python's global generators, so an exact resume
    needs every generator restored.
    """

    def __init__(self) -> None:
        self.hidden: torch.Tensor | None = None
        self.resets = 0

    def __call__(self, model: SequenceModel, batch: PairBatch) -> torch.Tensor:
        jitter = torch.from_numpy(np.random.normal(0, 0.01, batch.x.shape)).float()
        inputs = batch.x + jitter * random.random()
        outputs, hidden = model.rnn(inputs, self.hidden)
        self.hidden = hidden.detach()
        return nn.functional.mse_loss(model.head(model.dropout(outputs)), batch.y)

    def reset(self) -> None:
        self.hidden = None
        self.resets += 1

    def state_dict(self) -> dict:
        return {"hidden": self.hidden}

    def load_state_dict(self, state: dict) -> None:
        self.hidden = state["hidden"]


class Recorder(Callback):
    """Keeps every hook call and step record."""

    def __init__(self, name: str = "recorder", calls: list | None = None):
        self.name = name
        self.calls = calls if calls is not None else []
        self.records: list[StepRecord] = []
        self.evals: list[dict[str, float]] = []

    def on_fit_start(self, trainer):
        self.calls.append((self.name, "fit_start", trainer.state.global_step))

    def on_batch_end(self, trainer, record):
        self.calls.append((self.name, "batch_end", record.step))
        self.records.append(record)

    def on_eval_end(self, trainer, metrics):
        self.calls.append((self.name, "eval_end", trainer.state.global_step))
        self.evals.append(dict(metrics))

    def on_fit_end(self, trainer):
        self.calls.append((self.name, "fit_end", trainer.state.global_step))

    @property
    def losses(self) -> list[float]:
        return [record.loss for record in self.records]


def quiet_config(**overrides) -> TrainConfig:
    """A CPU config with the progress bar off, for tests."""
    settings = {"device": "cpu", "progress": False, "seed": 0}
    settings.update(overrides)
    return TrainConfig(**settings)


def mse_on(model: nn.Module, source) -> float:
    """Mean MSE of ``model`` over one epoch of ``source``."""
    losses = [nn.functional.mse_loss(model(b.x), b.y).item() for b in source.iter_epoch(0)]
    return sum(losses) / len(losses)


class FailingLoss:
    """``model.loss(batch)``, except that call number ``at_call`` (1-based) is multiplied by
    ``factor`` (NaN, inf) or, with ``factor=None``, raises ``KeyboardInterrupt``."""

    def __init__(self, at_call: int, factor: float | None):
        self.at_call, self.factor, self.calls = at_call, factor, 0

    def __call__(self, model: nn.Module, batch: PairBatch) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at_call and self.factor is None:
            raise KeyboardInterrupt  # like a second Ctrl-C in the middle of a step
        loss = model.loss(batch)
        return loss * self.factor if self.calls == self.at_call else loss
