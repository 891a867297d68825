"""Checks of what callers hand the trainer: clear errors naming the argument."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch

from rnnkit.train.checkpoint import TRAINER_KEY
from rnnkit.train.config import TrainConfig
from rnnkit.train.contracts import BatchSource


def scalar_loss(loss: Any) -> float:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise TypeError(f"loss_fn: expected a scalar tensor, got {shape}")
    if not loss.requires_grad:
        raise ValueError("loss_fn: the returned loss does not require grad (detached or no_grad?)")
    return float(loss.detach())


def check_metrics(metrics: Any, monitor: str) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"evaluate: expected a dict of metric name -> number, got {metrics!r:.100}")
    checked = {}
    for name, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"evaluate: metric {name!r} should be a number, got {value!r:.100}")
        checked[str(name)] = float(value)
    if monitor not in checked:
        raise ValueError(
            f"monitor: {monitor!r} is not among the metrics evaluate returned: "
            f"{', '.join(sorted(checked)) or 'none'}"
        )
    return checked


def check_arguments(model, train_data, config, loss_fn, evaluate, monitor_mode) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(train_data, BatchSource):
        raise TypeError(
            "train_data: expected an object with iter_epoch(epoch) and __len__(), "
            f"got {type(train_data).__name__}"
        )
    if len(train_data) < 1:
        raise ValueError(
            f"train_data: expected at least one batch per epoch, got {len(train_data)}"
        )
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    if loss_fn is None and not callable(getattr(model, "loss", None)):
        raise TypeError(
            f"loss_fn: {type(model).__name__} has no loss(batch) method; pass loss_fn=..."
        )
    for name, value in (("loss_fn", loss_fn), ("evaluate", evaluate)):
        if value is not None and not callable(value):
            raise TypeError(f"{name}: expected a callable, got {type(value).__name__}")
    if monitor_mode not in ("min", "max"):
        raise ValueError(f"monitor_mode: expected 'min' or 'max', got {monitor_mode!r}")
    if evaluate is None and config.schedule == "plateau":
        raise ValueError("config.schedule: 'plateau' follows a monitored metric; pass evaluate=")
    if evaluate is None and config.patience is not None:
        raise ValueError(
            f"config.patience: early stopping ({config.patience}) needs evaluate=, got None"
        )


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    metadata = dict(metadata or {})
    if TRAINER_KEY in metadata:
        raise ValueError(f"metadata: the key {TRAINER_KEY!r} is reserved for the trainer")
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata: expected a JSON-able dict; {error}") from error
    return metadata
