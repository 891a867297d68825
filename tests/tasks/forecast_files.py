"""Synthetic forecasting files (seeded): series whose future depends on a covariate only, and
seasonal series with a level that moves; a small series run config and its built model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from rnnkit.tasks.config import RunConfig, apply_overrides, config_from_dict
from rnnkit.tasks.forecasting import ForecastingTask


def recorded_forecast_calls(monkeypatch) -> list[tuple[int, int | None]]:
    """Every ``ForecastingTask.forecast`` call made from now on, as ``(windows, seed)`` (the
    ``seed`` keyword, ``None`` when not given); the calls still forecast."""
    calls, forecast = [], ForecastingTask.forecast

    def recorded(self, model, windows, *args, **kwargs):
        calls.append((len(windows.history), kwargs.get("seed")))
        return forecast(self, model, windows, *args, **kwargs)

    monkeypatch.setattr(ForecastingTask, "forecast", recorded)
    return calls


def write_rows(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def promotion_series(tmp: Path, steps: int = 400, seed: int = 0) -> tuple[Path, Path]:
    """``value = 2 · promo + noise`` with ``promo`` a coin flip per step: only a model that
    knows the promotions over the horizon can forecast it. Returns (train, test) files."""
    rng = np.random.default_rng(seed)
    promo = rng.integers(0, 2, steps)
    value = 2.0 * promo + 0.05 * rng.standard_normal(steps)
    rows = [[t, f"{v:.4f}", p] for t, (v, p) in enumerate(zip(value, promo, strict=True))]
    cut = int(steps * 0.8)
    header = ["time", "value", "promo"]
    return (write_rows(tmp / "train.csv", header, rows[:cut]),
            write_rows(tmp / "test.csv", header, rows[cut:]))


def signed_panel(tmp: Path, series: int = 6, steps: int = 160, seed: int = 0) -> tuple[Path, Path]:
    """A long-format panel: ``value = sign · x + noise`` with ``x`` a known future covariate
    and ``sign`` (±1) a static covariate per series. With a lookback of 1 the history cannot
    reveal the sign, so only a model given ``sign`` forecasts well."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    cut = int(steps * 0.75)
    for index in range(series):
        sign = 1 if index % 2 == 0 else -1
        x = rng.standard_normal(steps)
        value = sign * x + 0.05 * rng.standard_normal(steps)
        for t in range(steps):
            row = [f"s{index}", t, f"{value[t]:.4f}", f"{x[t]:.4f}", sign]
            (train if t < cut else test).append(row)
    header = ["series_id", "time", "value", "x", "sign"]
    return (write_rows(tmp / "panel_train.csv", header, train),
            write_rows(tmp / "panel_test.csv", header, test))


def seasonal_series(path: Path, pattern: list[float], level: np.ndarray,
                    noise: float) -> Path:
    """A ``t, v`` file: ``pattern`` repeated, plus ``level`` (one value per step), plus
    Gaussian ``noise`` (seed 0)."""
    rng = np.random.default_rng(0)
    t = np.arange(len(level))
    values = np.asarray(pattern)[t % len(pattern)] + level + noise * rng.standard_normal(len(t))
    return write_rows(path, ["t", "v"], [[i, f"{v:.4f}"] for i, v in
                                         zip(t, values, strict=True)])


def series_config(path: Path, data: dict, epochs: int, *overrides: str) -> RunConfig:
    """A small forecasting run over the ``t, v`` file ``path`` (``data``: lookback, horizon,
    season), then ``overrides`` (``section.key=value``) as the command line gives them."""
    raw = {"task": "forecasting",
           "data": {"train": str(path), "time_column": "t", "format": "series", **data},
           "model": {"hidden_size": 16},
           "train": {"max_epochs": epochs, "lr": 0.01, "progress": False, "seed": 0}}
    return config_from_dict(apply_overrides(raw, list(overrides)))


def built_model(config: RunConfig, path: Path) -> nn.Module:
    """The untrained model ``config`` builds once its task has seen ``path``."""
    task = ForecastingTask.fit(config, path)
    task.fit_on_split(*task.hold_out(task.read(path)))
    return task.build_model()
