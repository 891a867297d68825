"""Forecasting: a CSV series → the next ``horizon`` steps from a ``lookback`` window, scaled on
the training part only; MAE, RMSE, sMAPE and MASE, with the seasonal-naive baseline alongside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rnnkit.data import DataFormatError, StandardScaler, WindowSource, sliding_windows
from rnnkit.data.readers import SeriesReader
from rnnkit.tasks.base import Task, model_device
from rnnkit.tasks.config import RunConfig
from rnnkit.tasks.data_files import open_reader
from rnnkit.train import metrics


@dataclass
class Series:
    """A series as read: ``values`` ``(time, features)``, time labels, and its file."""

    values: np.ndarray
    times: tuple[str, ...] | None
    path: str
    context: np.ndarray | None = None  # raw steps just before ``values``


def _time_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


class ForecastingTask(Task):
    """Columns: ``value_columns`` (default all but ``time_column``); ``target_columns`` are
    forecast (default all). Valid/test files continue the training series: their first windows
    take the lookback from the end of the series before them."""

    name = "forecasting"
    model_type = "forecaster"
    model_fields = ("bidirectional", "strategy", "gaussian")
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "data": {"lookback": 24, "horizon": 12, "normalize": "last_value"},
        "model": {"hidden_size": 64, "gaussian": True},
        "train": {"lr": 3e-3, "batch_size": 16, "max_epochs": 200, "patience": 10,
                  "weight_decay": 0.0},
    }

    # ------------------------------------------------------------------------- reading
    def read(self, path: str | Path) -> Series:
        reader = open_reader(self.name, self.config.data, path)
        assert isinstance(reader, SeriesReader)
        series = reader.read_series()
        columns = self.artifacts.get("columns")
        if columns is not None and list(series.columns) != columns:
            raise DataFormatError(path, 1, f"expected value columns {columns}, "
                                           f"got {list(series.columns)}")
        result = Series(series.values, series.times, str(path))
        result.context = self._context_for(result)
        return result

    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> ForecastingTask:
        task = cls(config, {})
        reader = open_reader(cls.name, config.data, train_path)
        series = reader.read_series()
        columns = list(series.columns)
        targets = config.data.target_columns or columns
        missing = [c for c in targets if c not in columns]
        if missing:
            raise DataFormatError(train_path, 1, f"target column(s) {missing} not among {columns}")
        task.artifacts = {"columns": columns, "targets": [columns.index(c) for c in targets]}
        return task

    def fit_on_split(self, train: Series, valid: Series) -> None:
        """Scaling statistics from the training part only; ``valid`` gets the end of ``train``
        as context, and the end of ``valid`` is kept as context for files that follow it."""
        scaler = StandardScaler().fit(train.values)
        lookback = self.config.data.lookback
        valid.context = train.values[-lookback:]
        seen = np.concatenate([train.values, valid.values])
        last = valid.times or train.times
        relative = self.config.data.normalize == "last_value"
        mean = np.zeros_like(scaler.mean) if relative else scaler.mean  # levels come per window
        self.artifacts.update(
            mean=mean.tolist(), std=scaler.std.tolist(),
            train_targets=train.values[:, self.artifacts["targets"]].tolist(),
            context=seen[-lookback:].tolist(), last_time=last[-1] if last else None,
        )

    def hold_out(self, examples: Series) -> tuple[Series, Series]:
        """The last ``valid_fraction`` of the series (at least one horizon) is validation."""
        n = len(examples.values)
        size = max(self.config.data.horizon, int(n * self.config.data.valid_fraction))
        times = examples.times
        head = Series(examples.values[:-size], times[:-size] if times else None, examples.path)
        tail = Series(examples.values[-size:], times[-size:] if times else None, examples.path)
        return head, tail

    def limit(self, examples: Series) -> Series:
        """The first ``eval_limit`` windows' worth of steps (stride = horizon)."""
        limit = self.config.data.eval_limit
        if limit is None:
            return examples
        steps = limit * self.config.data.horizon
        times = examples.times[:steps] if examples.times else None
        return Series(examples.values[:steps], times, examples.path, examples.context)

    # -------------------------------------------------------------------------- model
    def model_config(self) -> dict[str, Any]:
        return self.model_options(
            input_size=len(self.artifacts["columns"]), horizon=self.config.data.horizon,
            target_indices=self.artifacts["targets"], mean=self.artifacts.get("mean"),
            std=self.artifacts.get("std"),
        )

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        mean, std = np.asarray(self.artifacts["mean"]), np.asarray(self.artifacts["std"])
        return (values - mean) / std

    def _levels(self, history: np.ndarray) -> np.ndarray:
        """Per window, the value subtracted before the model: ``(windows, 1, features)``."""
        if self.config.data.normalize != "last_value":
            return np.zeros_like(history[:, -1:, :])
        return history[:, -1:, :]

    def train_source(self, examples: Series, seed: int) -> WindowSource:
        data, targets = self.config.data, self.artifacts["targets"]
        history, future = sliding_windows(examples.values, data.lookback, data.horizon,
                                          target_columns=targets)
        level = self._levels(history)
        history = self._scaled(history - level)
        future = self._scaled_targets(future - level[..., targets])
        return WindowSource(history, future, self.config.train.batch_size, seed=seed)

    def forecast(self, model: nn.Module, history: np.ndarray):
        """:class:`~rnnkit.models.Forecast` in original units for raw ``history``
        ``(windows, lookback, features)``, undoing the per-window level if configured."""
        level = self._levels(history)
        inputs = torch.as_tensor(history - level, dtype=torch.float32, device=model_device(model))
        forecast = model.predict(inputs, interval=self.config.data.interval)
        shift = torch.as_tensor(level[..., self.artifacts["targets"]], dtype=forecast.mean.dtype,
                                device=forecast.mean.device)
        for name in ("mean", "lower", "upper"):
            if getattr(forecast, name) is not None:
                setattr(forecast, name, getattr(forecast, name) + shift)
        return forecast

    def _context_for(self, series: Series) -> np.ndarray | None:
        """The stored context when ``series`` starts after the series the run has seen."""
        context, last = self.artifacts.get("context"), self.artifacts.get("last_time")
        if context is None:
            return None
        if series.times and last is not None and _time_key(series.times[0]) <= _time_key(last):
            return None
        return np.asarray(context)

    def windows(self, series: Series) -> tuple[np.ndarray, np.ndarray]:
        """Raw (history, future) windows over ``series``, stride ``horizon``, preceded by the
        stored context when the file continues the training series."""
        data = self.config.data
        try:
            return sliding_windows(series.values, data.lookback, data.horizon,
                                   stride=data.horizon, target_columns=self.artifacts["targets"],
                                   context=series.context)
        except ValueError as error:
            raise DataFormatError(series.path, None, str(error)) from None

    def evaluate(self, model: nn.Module, examples: Series, progress: bool = False):
        history, future = self.windows(examples)
        forecast = self.forecast(model, history)
        predicted = forecast.mean.cpu().double().numpy()
        season = self.config.data.season
        train = np.asarray(self.artifacts["train_targets"])
        naive = np.stack([metrics.seasonal_naive_forecast(
            h[:, self.artifacts["targets"]], self.config.data.horizon, min(season, len(h) - 1)
        ).numpy() for h in history])
        result = {
            "loss": float(np.mean((self._scaled_targets(predicted) -
                                   self._scaled_targets(future)) ** 2)),
            "mae": metrics.mae(predicted, future),
            "rmse": metrics.rmse(predicted, future),
            "smape": metrics.smape(predicted, future),
            "mase": metrics.mase(predicted, future, train, season),
            "naive_mase": metrics.mase(naive, future, train, season),
        }
        if forecast.lower is not None:
            lower, upper = forecast.lower.cpu().numpy(), forecast.upper.cpu().numpy()
            result["coverage"] = float(np.mean((future >= lower) & (future <= upper)))
        return result

    def _scaled_targets(self, values: np.ndarray) -> np.ndarray:
        index = self.artifacts["targets"]
        return (values - np.asarray(self.artifacts["mean"])[index]) / np.asarray(
            self.artifacts["std"])[index]

    def predict(self, model: nn.Module, inputs: list[Series]) -> list[dict[str, Any]]:
        """The ``horizon`` steps after the end of each series, with the central
        ``data.interval`` when the model is Gaussian."""
        rows = []
        lookback = self.config.data.lookback
        names = [self.artifacts["columns"][i] for i in self.artifacts["targets"]]
        for series in inputs:
            if len(series.values) < lookback:
                raise DataFormatError(series.path, None, f"expected at least lookback={lookback} "
                                                         f"rows to forecast from, got "
                                                         f"{len(series.values)}")
            forecast = self.forecast(model, series.values[None, -lookback:])
            rows.extend(_forecast_rows(forecast, names))
        return rows


def _forecast_rows(forecast, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for step in range(forecast.mean.shape[1]):
        row: dict[str, Any] = {"step": step + 1}
        for index, name in enumerate(names):
            row[name] = float(forecast.mean[0, step, index])
            if forecast.lower is not None:
                row[f"{name}_lower"] = float(forecast.lower[0, step, index])
                row[f"{name}_upper"] = float(forecast.upper[0, step, index])
        rows.append(row)
    return rows
