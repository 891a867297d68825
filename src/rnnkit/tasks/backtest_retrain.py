"""``backtest --retrain``: a fresh model per origin, trained with the run's config on the data
before that origin (all of it, or the last ``train_size`` steps), then forecasting from it.
Each retrained run lives in ``RUN/backtest/retrain/origin_<N>/``, trained on
``RUN/backtest/retrain/history_<N>.csv``."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rnnkit.models import Forecast
from rnnkit.tasks.forecast_data import Series, Windows, with_context


def retrained_forecasts(run, series: list[Series], windows: Windows,
                        where: list[tuple[int, int]], settings) -> Forecast:
    """The forecast of every window in ``windows``, each by the model trained for its origin."""
    from rnnkit.tasks.run import load_run, train

    root = Path(run.run_dir) / "backtest" / "retrain"
    root.mkdir(parents=True, exist_ok=True)
    parts: dict[int, Forecast] = {}
    for origin in sorted({origin for _, origin in where}):
        rows = [row for row, (_, o) in enumerate(where) if o == origin]
        directory = root / f"origin_{origin}"
        data_file = _write_history(run, series, origin, settings,
                                   root / f"history_{origin}.csv")
        config = _retrain_config(run.config, data_file, settings)
        train(config, directory, overwrite=directory.joinpath(".rnnkit-run").exists(),
              notice=lambda _: None)
        retrained = load_run(directory)
        parts[origin] = (rows, retrained.task.forecast(retrained.model, _select(windows, rows)))
    return _merge(parts, len(where))


def _retrain_config(config, data_file: Path, settings):
    data = replace(config.data, dataset=None, train=str(data_file), valid=None, test=None,
                   format="long", id_column="series_id", time_column="time")
    train_section = config.train
    if settings.train_steps is not None:
        train_section = replace(train_section, max_steps=settings.train_steps, max_time=None)
    return replace(config, data=data, train=train_section)


def _write_history(run, series: list[Series], origin: int, settings, path: Path) -> Path:
    """``path``: a long-format CSV of every series up to ``origin`` (rolling: its last
    ``train_size`` steps)."""
    columns = list(run.task.roles.columns)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["series_id", "time", *columns])
        for item in series:
            values = with_context(item)
            offset = len(values) - len(item.values)
            end = offset + origin
            start = 0 if settings.window == "expanding" or settings.train_size is None else \
                max(0, end - settings.train_size)
            for step in range(start, end):
                writer.writerow([item.series_id or "series", step,
                                 *(f"{v:.10g}" for v in values[step])])
    return path


def _select(windows: Windows, rows: list[int]) -> Windows:
    def take(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else array[rows]

    return Windows(windows.history[rows], windows.future[rows], take(windows.covariates),
                   take(windows.static), windows.series[rows], windows.ids)


def _merge(parts: dict, count: int) -> Forecast:
    """One :class:`Forecast` whose row ``i`` is window ``i``'s, from per-origin forecasts."""
    first = next(iter(parts.values()))[1]
    merged = Forecast(torch.empty((count, *first.mean.shape[1:]), dtype=first.mean.dtype))
    for name in ("lower", "upper", "median", "std"):
        if getattr(first, name) is not None:
            setattr(merged, name, torch.empty_like(merged.mean))
    if first.quantiles is not None:
        merged.quantiles = {q: torch.empty_like(merged.mean) for q in first.quantiles}
    for rows, forecast in parts.values():
        index = torch.as_tensor(rows)
        for name in ("mean", "lower", "upper", "median", "std"):
            if getattr(merged, name) is not None:
                getattr(merged, name)[index] = getattr(forecast, name)
        for q in merged.quantiles or {}:
            merged.quantiles[q][index] = forecast.quantiles[q]
    return merged
