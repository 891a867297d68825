"""``backtest --retrain``: a fresh model per origin, trained with the run's config on the data
before that origin (all of it, or the last ``train_size`` steps), then forecasting from it.
Each retrained run lives in ``RUN/backtest/retrain/origin_<N>/``, trained on
``RUN/backtest/retrain/history_<N>.csv``.

A backtest stopped part-way can be run again: an origin whose run finished (it wrote its
``summary.json``) with the same config on the same history is reused, not trained again, so
only the origins not yet done cost training time. Training is seeded, so a reused model is
the one a new training would give.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

from rnnkit.models import Forecast
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.forecast_data import Series, Windows, with_context
from rnnkit.tasks.run_dir import CONFIG_FILE, SUMMARY_FILE
from rnnkit.train.durable import replace_file


def retrained_forecasts(run, series: list[Series], windows: Windows,
                        where: list[tuple[int, int]], settings,
                        notice: Callable[[str], None] | None = None) -> Forecast:
    """The forecast of every window in ``windows``, each by the model trained for its origin
    (or reused from an earlier, finished run of the same origin). ``notice`` receives a line
    per origin: which one of how many, its training time and the time left."""
    from rnnkit.tasks.run import load_run, train

    root = Path(run.run_dir) / "backtest" / "retrain"
    root.mkdir(parents=True, exist_ok=True)
    parts: dict[int, Forecast] = {}
    origins = sorted({origin for _, origin in where})
    trained_seconds: list[float] = []
    for index, origin in enumerate(origins, start=1):
        rows = [row for row, (_, o) in enumerate(where) if o == origin]
        directory = root / f"origin_{origin}"
        changed = _write_history(run, series, origin, settings, root / f"history_{origin}.csv")
        config = _retrain_config(run.config, root / f"history_{origin}.csv", settings)
        if not changed and _finished_with(directory, config):
            _tell(notice, f"origin {index}/{len(origins)} (step {origin}): reusing the model "
                          f"a previous backtest trained ({directory})")
        else:
            start = time.perf_counter()
            train(config, directory, overwrite=directory.joinpath(".rnnkit-run").exists(),
                  notice=lambda _: None)
            trained_seconds.append(time.perf_counter() - start)
            left = float(np.mean(trained_seconds)) * (len(origins) - index)
            _tell(notice, f"origin {index}/{len(origins)} (step {origin}): trained in "
                          f"{trained_seconds[-1]:.1f} s; about {_duration(left)} left")
        retrained = load_run(directory)
        # each origin its own draws, so an interval's sampling error averages over origins
        seed = fp.derived_seed(retrained.config.train.seed, f"origin {origin}")
        parts[origin] = (rows, retrained.task.forecast(retrained.model, _select(windows, rows),
                                                       seed=seed))
    return _merge(parts, len(where))


def _tell(notice: Callable[[str], None] | None, line: str) -> None:
    if notice is not None:
        notice(line)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs} s"


def _finished_with(directory: Path, config) -> bool:
    """Whether ``directory`` holds a finished run (its ``summary.json`` is written last) whose
    saved config is ``config``'s."""
    saved = directory / CONFIG_FILE
    if not (directory / SUMMARY_FILE).is_file() or not saved.is_file():
        return False
    wanted = yaml.safe_load(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return yaml.safe_load(saved.read_text(encoding="utf-8")) == wanted


def _retrain_config(config, data_file: Path, settings):
    data = replace(config.data, dataset=None, train=str(data_file), valid=None, test=None,
                   format="long", id_column="series_id", time_column="time")
    train_section = config.train
    if settings.train_steps is not None:
        train_section = replace(train_section, max_steps=settings.train_steps, max_time=None)
    return replace(config, data=data, train=train_section)


def _write_history(run, series: list[Series], origin: int, settings, path: Path) -> bool:
    """Write ``path``: a long-format CSV of every series up to ``origin`` (rolling: its last
    ``train_size`` steps). ``False`` when the file already held exactly that."""
    columns = list(run.task.roles.columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
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
    text = buffer.getvalue()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    replace_file(path, text, "backtest history")
    return True


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
