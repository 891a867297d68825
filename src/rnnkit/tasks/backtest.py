"""Backtesting a forecasting run: forecasts from many origins of a file, scored per origin and
aggregated, as Darts' ``historical_forecasts`` and GluonTS' rolling evaluation do.

Origins are the steps of each series at which a forecast starts: every ``stride`` steps from
the first step with ``lookback`` steps behind it (the file's context counts when it continues
the training series) to the last one with ``horizon`` steps after it. Without ``retrain``
the run's model forecasts from every origin. With ``retrain`` a fresh model is trained for
each origin (from ``2 · (lookback + horizon)`` steps on) on the data before it, using the
run's config: ``expanding`` windows train on
everything before the origin, ``rolling`` on the last ``train_size`` steps before it.

With ``calibration_window`` N (rolling conformal calibration, as Darts' conformal models do
with ``cal_length``), the interval factor of each origin is refitted on the last N forecasts
of the same series whose scored horizon ended before that origin, so only values observed by
then are used; origins with fewer than N such forecasts keep the run's validation factor.
With ``calibration_adapt`` gamma on top (adaptive conformal inference, Gibbs & Candès 2021),
the miscoverage level that quantile is taken at moves with the series' own misses: after each
forecast whose horizon has ended, ``alpha_t+1 = alpha_t + gamma · (alpha - err_t)`` (``err_t``:
the share of its values outside its interval), so a burst of misses widens the next intervals
within a few forecasts instead of a window's length.

A run trained since validation scores are saved (``validation_scores`` in its artifacts: the
interval score of every validation forecast, with the time its horizon ended) can start the
rolling window from those (``calibration_seed``, off by default: on the coverage benchmark it
helped elecdaily's rolling calibration and hurt the store panel's): an origin's window
holds the most recent N forecasts ended before it, validation ones included, so the first
origins of a file that continues the validation period are calibrated on the latest errors
instead of the fixed factor. Only forecasts whose last step's time label lies before the
origin's count; a file without time labels, or a run without saved scores, is calibrated as
before.

Results go to ``RUN/backtest/``: ``origins.csv`` (one row per series and origin),
``forecasts.csv`` (every forecast step against the actual value) and ``summary.json``
(settings and the metrics averaged over origins).
"""

from __future__ import annotations

import bisect
import csv
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rnnkit.data.readers.panel import time_key
from rnnkit.tasks import forecast_metrics as fm
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.forecast_baselines import ets_forecast, theta_forecast
from rnnkit.tasks.forecast_data import Series, Windows, split_windows, with_context
from rnnkit.train.durable import replace_file
from rnnkit.train.state_io import finite_json

BACKTEST_DIR = "backtest"


@dataclass
class BacktestSettings:
    """``horizon``/``stride`` ``None``: the run's horizon (``horizon`` may be shorter, never
    longer: a direct model forecasts a fixed horizon). ``window`` and ``train_size`` matter
    with ``retrain`` only; ``train_steps`` caps each retraining (``None``: the config's).
    ``calibration_window``: forecasts behind each origin's rolling conformal factor (``None``:
    the config's ``data.calibration_window``; 0: the validation factor throughout).
    ``calibration_adapt``: the step size gamma of adaptive conformal inference on top of it
    (``None``: the config's ``data.calibration_adapt``; 0: off). ``calibration_seed``: let
    the rolling window start from the run's saved validation scores (when it has them).
    ``calibration_per_step``: one rolling factor per lead time instead of one per forecast
    (``None``: the config's ``data.calibration_per_step``)."""

    horizon: int | None = None
    stride: int | None = None
    window: Literal["expanding", "rolling"] = "expanding"
    retrain: bool = False
    train_size: int | None = None
    train_steps: int | None = None
    calibration_window: int | None = None
    calibration_adapt: float | None = None
    calibration_seed: bool = False
    calibration_per_step: bool | None = None


@dataclass
class Backtest:
    """``origins``: one metrics row per series and origin; ``forecasts``: one row per forecast
    step; ``aggregate``: each metric averaged over the origins."""

    settings: BacktestSettings
    origins: list[dict[str, Any]] = field(default_factory=list)
    forecasts: list[dict[str, Any]] = field(default_factory=list)
    aggregate: dict[str, float] = field(default_factory=dict)


def origin_windows(series: list[Series], task, horizon: int, stride: int,
                   first: int = 0) -> tuple[Windows, list[tuple[int, int]]]:
    """One window per series and origin, and ``(series index, origin)`` for each (the origin
    as a row of the series' own values, the first forecast step; none before ``first`` rows
    of the series with its context)."""
    lookback, roles = task.config.data.lookback, task.roles
    full_horizon = task.config.data.horizon
    parts, where = [], []
    for index, item in enumerate(series):
        values = with_context(item)
        offset = len(values) - len(item.values)
        # A direct model needs covariates over its whole horizon: pad past the file's end.
        padded = np.concatenate([values, np.full((full_horizon, values.shape[1]), np.nan)])
        # Future covariates must be known over the model's whole horizon.
        last = len(values) - (full_horizon if roles.future else horizon)
        for origin in range(max(lookback, offset, first), last + 1, stride):
            parts.append(padded[origin - lookback:origin + full_horizon])
            where.append((index, origin - offset))
    if not parts:
        raise ConfigError(f"backtest: no origin has lookback={lookback} steps before it and "
                          f"horizon={horizon} after it in {series[0].path}")
    owners = np.asarray([index for index, _ in where])
    windows = split_windows(np.stack(parts), lookback, roles, owners,
                            tuple(s.series_id for s in series))
    windows.future = windows.future[:, :horizon]
    return windows, where


def run_backtest(run, path: str | Path, settings: BacktestSettings,
                 notice: Callable[[str], None] | None = None) -> Backtest:
    """Backtest ``run`` (a :class:`~rnnkit.tasks.run.Run`) on the file ``path``. With
    ``retrain``, ``notice`` receives a progress line per origin (time taken, time left)."""
    task = run.task
    horizon = settings.horizon or task.config.data.horizon
    if not 1 <= horizon <= task.config.data.horizon:
        raise ConfigError(f"--horizon: expected 1..{task.config.data.horizon} (the run's "
                          f"horizon), got {horizon}")
    stride = settings.stride or horizon
    if stride < 1:
        raise ConfigError(f"--stride: expected a positive number of steps, got {stride}")
    length = _calibration_window(task, settings)
    gamma = _calibration_adapt(task, settings, length)
    per_step = _calibration_per_step(task, settings, length)
    settings = replace(settings, horizon=horizon, stride=stride, calibration_window=length,
                       calibration_adapt=gamma, calibration_per_step=per_step)
    examples = task.read(path)
    series = examples if isinstance(examples, list) else [examples]
    windows, where = origin_windows(series, task, horizon, stride,
                                    _first_trainable(task, settings))
    factors = None
    if settings.retrain:
        from rnnkit.tasks.backtest_retrain import retrained_forecasts

        forecast = retrained_forecasts(run, series, windows, where, settings, notice)
    elif length:
        forecast = task.forecast(run.model, windows, calibrated=False)
        scores = fp.conformal_scores(_trim(forecast, horizon), windows.future)
        fallback = task.artifacts.get("conformal_factor", 1.0) \
            if task.config.data.calibration != "none" else 1.0
        seeds = _seeds(task, series, horizon) if settings.calibration_seed else None
        factors = rolling_factors(scores, where, horizon, length, task.config.data.interval,
                                  fallback, gamma, seeds, per_step)
        if per_step:  # steps past a shorter backtest horizon are not scored: any factor will do
            full = task.config.data.horizon
            fp.widen(forecast, np.pad(factors, ((0, 0), (0, full - horizon)), mode="edge"))
            factors = factors.mean(axis=1)
        else:
            fp.widen(forecast, factors)
    else:
        forecast = task.forecast(run.model, windows)
    result = Backtest(settings)
    _score(task, series, windows, where, forecast, horizon, result)
    if factors is not None:
        for record, factor in zip(result.origins, factors, strict=True):
            record["factor"] = float(factor)
    return result


def _calibration_window(task, settings: BacktestSettings) -> int:
    """The rolling calibration window in forecasts (0: none), checked against the run."""
    length = settings.calibration_window
    option = "--calibration-window"
    if length is None:
        length, option = task.config.data.calibration_window, "data.calibration_window"
    if not length:
        if settings.calibration_seed:
            raise ConfigError("--calibration-seed: starts the rolling calibration window "
                              "from validation forecasts and needs --calibration-window N (or "
                              "data.calibration_window), got none")
        return 0
    if length < 1:
        raise ConfigError(f"{option}: expected a positive number of forecasts, got {length}")
    if option.startswith("data.") and (settings.retrain or task.likelihood == "none"):
        return 0  # the config's window (14 by default) where no single interval exists to refit
    if settings.retrain:
        raise ConfigError(f"{option}: rolling calibration refits the interval of one model; "
                          "with --retrain each origin has its own model, got both")
    if task.likelihood == "none":
        raise ConfigError(f"{option}: the run's model gives point forecasts "
                          "(model.likelihood: none), which have no interval to calibrate")
    return length


def _calibration_adapt(task, settings: BacktestSettings, length: int) -> float:
    """The adaptive step size gamma (0: none), checked against the rolling window."""
    gamma, option = settings.calibration_adapt, "--calibration-adapt"
    if gamma is None:
        gamma, option = task.config.data.calibration_adapt, "data.calibration_adapt"
    if not gamma:
        return 0.0
    if not 0.0 < gamma <= 1.0:
        raise ConfigError(f"{option}: expected a step size in (0, 1], got {gamma}")
    if not length:
        raise ConfigError(f"{option}: adapts the level of the rolling conformal factor and "
                          "needs --calibration-window N (or data.calibration_window), got none")
    return float(gamma)


def _seeds(task, series: list[Series], horizon: int
           ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per series index, the run's saved validation scores ``(k, horizon, targets)`` and the
    row of the series at or after whose time each ended ``(k,)``: -1 before its first row.
    Empty for runs saved without scores and series without time labels."""
    stored = task.artifacts.get("validation_scores") or {}
    seeds = {}
    for index, item in enumerate(series):
        entry = stored.get(item.series_id)
        if not entry or not entry["scores"] or not item.times:
            continue
        keys = [time_key(label) for label in item.times]
        # Ending at (or after) row r's time and before row r+1's: seen by origins > r.
        ends = np.asarray([bisect.bisect_right(keys, time_key(label)) - 1
                           for label in entry["end_times"]])
        seeds[index] = (np.asarray(entry["scores"], dtype=float)[:, :horizon], ends)
    return seeds


def _calibration_per_step(task, settings: BacktestSettings, length: int) -> bool:
    """Whether rolling factors are per lead time, checked against the rolling window."""
    per_step, option = settings.calibration_per_step, "--calibration-per-step"
    if per_step is None:
        per_step, option = task.config.data.calibration_per_step, "data.calibration_per_step"
    if per_step and not length:
        raise ConfigError(f"{option}: refits the rolling conformal factor per lead time and "
                          "needs --calibration-window N (or data.calibration_window), got none")
    return bool(per_step)


def rolling_factors(scores: np.ndarray, where: list[tuple[int, int]], horizon: int,
                    length: int, interval: float, fallback: float, gamma: float = 0.0,
                    seeds: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
                    per_step: bool = False) -> np.ndarray:
    """Per window ``(windows,)``: the conformal factor of the ``length`` most recent forecasts
    of its series (``scores`` ``(windows, horizon, targets)``, see
    :func:`~rnnkit.tasks.forecast_probability.conformal_scores`) whose ``horizon`` steps all
    lie before its origin, or ``fallback`` while fewer than ``length`` exist. With ``gamma``
    > 0 the quantile's level is ``1 - alpha_t`` (adaptive conformal inference): ``alpha_t``
    starts at ``1 - interval`` and moves by ``gamma · (1 - interval - err_j)`` for each of
    those ended forecasts ``j``, ``err_j`` being the share of its values its own factor missed;
    a level of 1 or more takes the largest score. ``seeds``: per series index, scores of
    earlier forecasts ``(k, horizon, targets)`` and the row each ended at ``(k,)`` (before
    the file: negative), counted among the ended forecasts of every origin after that row;
    they fill the window but do not move ``alpha_t``, which starts at the file's first
    origin. With ``per_step`` the factors are ``(windows, horizon)``: step ``h``'s quantile is
    taken over the window's scores at lead time ``h`` only (errors grow with the lead)."""
    factors = np.full((len(where), horizon) if per_step else len(where), float(fallback))
    target = 1.0 - interval
    by_series: dict[int, list[tuple[int, int]]] = {}
    for row, (index, origin) in enumerate(where):
        by_series.setdefault(index, []).append((origin, row))
    for items in by_series.values():
        items.sort()
        rows = [row for _, row in items]
        seed_scores, seed_ends = (seeds or {}).get(index, (scores[:0], np.zeros(0, dtype=int)))
        # Every forecast's last row, ordered by it: the seeds', then this file's.
        ends = np.concatenate([seed_ends, [origin + horizon - 1 for origin, _ in items]])
        pool = np.concatenate([seed_scores, scores[rows]])
        order = np.argsort(ends, kind="stable")
        ends, pool = ends[order], pool[order]
        rank = np.argsort(order)[len(seed_ends):]
        # err_j - target of every forecast so far, in end order (0 for seeds); ACI's alpha_t
        # telescopes to target - gamma · (sum of the ended ones).
        excess = np.zeros(len(ends))
        for position, (origin, row) in enumerate(items):
            # Forecast j has been observed in full before `origin` when its last row is before.
            elapsed = int(np.searchsorted(ends, origin - 1, side="right"))
            if elapsed >= length:
                alpha = target - gamma * float(excess[:elapsed].sum())
                recent = pool[elapsed - length:elapsed]
                factors[row] = [fp.conformal_quantile(recent[:, step], 1.0 - alpha)
                                for step in range(horizon)] if per_step \
                    else fp.conformal_quantile(recent, 1.0 - alpha)
            missed = scores[row] > (factors[row][:, None] if per_step else factors[row])
            excess[rank[position]] = float(np.mean(missed)) - target
    return factors


def _first_trainable(task, settings: BacktestSettings) -> int:
    """With ``retrain``, the first origin leaves room for training and validation windows
    before it: ``2 · (lookback + horizon)`` steps."""
    if not settings.retrain:
        return 0
    data = task.config.data
    needed = 2 * (data.lookback + data.horizon)
    if settings.window == "rolling" and (settings.train_size or 0) < needed:
        raise ConfigError(f"--train-size: expected at least 2 · (lookback + horizon) = {needed} "
                          f"steps to train and validate on, got {settings.train_size}")
    return needed


def _score(task, series: list[Series], windows: Windows, where: list[tuple[int, int]],
           forecast, horizon: int, result: Backtest) -> None:
    targets = list(task.roles.targets)
    scales = task._mase_scales(series)
    season = task.config.data.season
    naive = fm.seasonal_naive(windows.history[..., targets], horizon, season)
    theta = theta_forecast(windows.history[..., targets], horizon, season)
    ets = ets_forecast(windows.history[..., targets], horizon, season)
    values = {name: None if getattr(forecast, name) is None
              else getattr(forecast, name)[:, :horizon].cpu().double().numpy()
              for name in ("mean", "lower", "upper")}
    scores = _origin_scores(values, windows.future, scales[[index for index, _ in where]],
                            {"naive_mase": naive, "theta_mase": theta, "ets_mase": ets})
    columns = {name: column.tolist() for name, column in scores.items()}
    # target 0 of every forecast step, as plain floats: (rows, horizon) lists
    steps = {name: None if array is None else array[..., 0].tolist()
             for name, array in (("actual", windows.future), *values.items())}
    for row, (index, origin) in enumerate(where):
        item = series[index]
        record = {"series": item.series_id, "origin": origin,
                  "time": item.times[origin] if item.times and origin < len(item.times)
                  else None}
        record.update((name, column[row]) for name, column in columns.items())
        result.origins.append(record)
        result.forecasts.extend(_forecast_rows(item, origin, steps, row))
    if values["lower"] is not None:
        trimmed = _trim(forecast, horizon)
        result.aggregate.update(fp.probabilistic_scores(trimmed, windows.future))
        inside = (windows.future >= values["lower"]) & (windows.future <= values["upper"])
        result.aggregate.update(fm.coverage_interval(
            inside, windows.series, np.asarray([origin for _, origin in where])))
    for name in ("mae", "rmse", "smape", "mase", "naive_mase", "theta_mase", "ets_mase"):
        if all(name in record for record in result.origins):
            result.aggregate[name] = float(np.mean([r[name] for r in result.origins]))
    result.aggregate["origins"] = len(result.origins)


def _origin_scores(values: dict[str, np.ndarray | None], actual: np.ndarray,
                   scales: np.ndarray, baselines: dict[str, np.ndarray | None]
                   ) -> dict[str, np.ndarray]:
    """Each origin's metrics, all origins at once: ``values`` ``mean``/``lower``/``upper``
    and ``actual`` ``(origins, horizon, targets)``, ``scales`` ``(origins, targets)`` (its
    series' MASE scale), ``baselines`` (name → forecast, or ``None`` when not computed) →
    name → ``(origins,)``: MAE, RMSE and sMAPE over the origin's steps and targets, MASE
    averaged over targets, coverage of the interval."""
    predicted = values["mean"]
    error = predicted - actual
    scores = {"mae": np.abs(error).mean(axis=(1, 2)),
              "rmse": np.sqrt((error ** 2).mean(axis=(1, 2))),
              "smape": fm.smape_terms(predicted, actual).mean(axis=(1, 2)),
              "mase": _mase(predicted, actual, scales)}
    scores.update((name, _mase(forecast, actual, scales))
                  for name, forecast in baselines.items() if forecast is not None)
    if values["lower"] is not None:
        scores["coverage"] = ((actual >= values["lower"]) & (actual <= values["upper"])).mean(
            axis=(1, 2))
    return scores


def _mase(predicted: np.ndarray, actual: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``(origins,)``: each origin's mean absolute error per target over its series' scale,
    averaged over targets."""
    return (np.abs(predicted - actual).mean(axis=1) / scales).mean(axis=1)


def _trim(forecast, horizon: int):
    """The first ``horizon`` steps of every field of ``forecast`` (a copy)."""
    trimmed = replace(forecast)
    trimmed.map(lambda values: values[..., :horizon, :])
    if trimmed.std is not None:
        trimmed.std = trimmed.std[:, :horizon]
    return trimmed


def _forecast_rows(item: Series, origin: int, steps: dict[str, list | None],
                   row: int) -> list[dict[str, Any]]:
    """One record per step of forecast ``row``: ``steps`` holds each field's values of the
    first target, ``(origins, horizon)`` lists (``lower``/``upper`` ``None`` for point
    models)."""
    rows = []
    for step, actual in enumerate(steps["actual"][row]):
        position = origin + step
        record = {"series": item.series_id, "origin": origin, "step": step + 1,
                  "time": item.times[position] if item.times else position,
                  "actual": actual, "mean": steps["mean"][row][step]}
        if steps["lower"] is not None:
            record["lower"] = steps["lower"][row][step]
            record["upper"] = steps["upper"][row][step]
        rows.append(record)
    return rows


def save_backtest(result: Backtest, run_dir: str | Path) -> Path:
    """Write ``origins.csv``, ``forecasts.csv`` and ``summary.json`` under ``RUN/backtest``."""
    directory = Path(run_dir) / BACKTEST_DIR
    directory.mkdir(exist_ok=True)
    replace_file(directory / "origins.csv", _csv(result.origins), "backtest origins")
    replace_file(directory / "forecasts.csv", _csv(result.forecasts), "backtest forecasts")
    summary = {"settings": asdict(result.settings), "aggregate": result.aggregate}
    replace_file(directory / "summary.json",
                 json.dumps(finite_json(summary), indent=2, allow_nan=False) + "\n",
                 "backtest summary")
    return directory


def read_backtest_forecasts(run_dir: str | Path) -> list[dict[str, str]] | None:
    """The rows of ``RUN/backtest/forecasts.csv``, or ``None`` when no backtest was saved."""
    path = Path(run_dir) / BACKTEST_DIR / "forecasts.csv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_backtest_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """``RUN/backtest/summary.json`` (``settings`` and ``aggregate``), or ``None`` when no
    backtest was saved."""
    path = Path(run_dir) / BACKTEST_DIR / "summary.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _csv(rows: list[dict[str, Any]]) -> str:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
