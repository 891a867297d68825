"""Intervals refitted on a series' latest errors when forecasting (``data.calibration_window``).

A backtest with a rolling calibration window refits the conformal factor at each origin on
the last N forecasts of its series whose horizons ended before that origin (Darts'
``cal_length``), so its intervals follow a change of noise level that the validation factor,
fitted once, misses. ``predict`` does the same for the one origin it forecasts from, the end
of the file it is given: it forecasts that history's own most recent windows, scores them
against what followed, and widens the new forecast by the factor those scores give. The
factor comes from the backtest's own :func:`~rnnkit.tasks.backtest.rolling_factors`, so a
forecast gets exactly the interval a stride-1 backtest with the same settings gives an origin
at that step (``calibration_per_step`` and ``calibration_adapt`` included; adaptive
calibration replays every window of the file, from its first, as a backtest does). Where the
intervals come from sample paths (autoregressive models, and likelihoods without closed-form
quantiles), equal up to the sampling: the paths drawn for a window depend on the other
windows of the call.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from rnnkit.data.readers.panel import time_key
from rnnkit.data.windows import prepend_context
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.backtest import rolling_factors
from rnnkit.tasks.base import progress_batches
from rnnkit.tasks.forecast_data import Series, Windows, lazy_windows


def latest_factor(task, model: nn.Module, series: Series,
                  window: int | None = None) -> np.ndarray | None:
    """The conformal factor of a forecast from the end of ``series`` for the forecasting
    ``task``: ``(1,)``, or ``(1, horizon)`` with ``data.calibration_per_step``. ``window``:
    the ended forecasts it is refitted on (``None``: ``data.calibration_window``). ``None``
    without a window or for point forecasts (the run's fixed factor, if any, applies). With
    fewer than ``window`` ended forecasts in the history, the run's validation factor, as in
    a backtest."""
    return latest_factors(task, model, [series], window)[0]


def latest_factors(task, model: nn.Module, series: list[Series],
                   window: int | None = None) -> list[np.ndarray | None]:
    """:func:`latest_factor` of each of ``series``, their recent windows forecast in one call
    (a panel of hundreds of series would otherwise make hundreds of small ones)."""
    data = task.config.data
    length = (data.calibration_window if window is None else window) or 0
    if not length or task.likelihood == "none":
        return [None] * len(series)
    gamma = data.calibration_adapt or 0.0
    finals = [(index, len(prepend_context(item.values, item.context, data.lookback)))
              for index, item in enumerate(series)]  # each forecast's origin, with context
    owners = [index for index, length in finals if length >= data.lookback + data.horizon]
    where: list[tuple[int, int]] = []
    scores = np.zeros((0, data.horizon, len(task.roles.targets)))
    if owners:  # else no forecast of any history has ended
        windows = lazy_windows([series[i] for i in owners], task.roles, data.lookback,
                               data.horizon)
        chosen = _recent_windows(task, series, owners, windows, length, gamma)
        where = [(owners[windows.series[row]], int(origin)) for row, origin in chosen]
        scores = _scores(task, model, windows, [row for row, _ in chosen])
    # Each forecast itself as a last window: its own score is never used for its factor.
    scores = np.concatenate([scores, np.zeros((len(finals), *scores.shape[1:]))])
    factors = rolling_factors(scores, [*where, *finals], data.horizon, length, data.interval,
                              _fallback(task), gamma, per_step=data.calibration_per_step)
    return [factors[len(where) + i:len(where) + i + 1] for i in range(len(series))]


def evaluation_factors(task, model: nn.Module, series: list[Series], windows: Windows,
                       length: int, progress: bool = False) -> np.ndarray:
    """The factor of each window of an evaluation (``windows``: ``task.windows(series)``,
    stride ``horizon``) that a stride-1 backtest of the same series gives its origin, with a
    rolling window of ``length`` forecasts (unseeded: the validation factor until ``length``
    forecasts have ended in the file): ``(windows,)``, or ``(windows, horizon)`` with
    ``data.calibration_per_step``. So an evaluation scores the intervals ``predict`` and
    ``backtest`` give, not those of the validation factor alone. Costs a forecast of every
    stride-1 window, ``horizon`` times the evaluation's own (a bar on stderr with
    ``progress``)."""
    data = task.config.data
    every = lazy_windows(series, task.roles, data.lookback, data.horizon)
    scores = _scores(task, model, every, np.arange(len(every)), progress)
    # Window i of a series starts at its row i, so origins order the windows of each series.
    where = [(int(index), int(start)) for index, start in zip(every.series, every.starts,
                                                             strict=True)]
    factors = rolling_factors(scores, where, data.horizon, length, data.interval,
                              _fallback(task), data.calibration_adapt or 0.0,
                              per_step=data.calibration_per_step)
    # Evaluation window k of a series starts where its stride-1 window k · horizon does.
    chosen = np.empty(len(windows.series), dtype=np.intp)
    for index in np.unique(windows.series):
        mine = np.flatnonzero(windows.series == index)
        chosen[mine] = np.flatnonzero(every.series == index)[np.arange(len(mine)) * data.horizon]
    return factors[chosen]


def _scores(task, model: nn.Module, windows, rows, progress: bool = False) -> np.ndarray:
    """Conformal scores ``(len(rows), horizon, targets)`` of the uncalibrated forecasts of
    the lazy ``windows`` ``rows``, forecast in slices of :data:`MAX_WINDOWS_PER_CALL`."""
    rows = np.asarray(rows, dtype=np.intp)
    data = task.config.data
    parts = [np.zeros((0, data.horizon, len(task.roles.targets)))]
    slices = range(0, len(rows), MAX_WINDOWS_PER_CALL)
    for first in progress_batches(iter(slices), len(slices), progress, "calibration windows"):
        part = windows.take(rows[first:first + MAX_WINDOWS_PER_CALL])
        # each slice its own draws: with one seed, window k of every slice shared them
        seed = fp.derived_seed(task.config.train.seed, f"windows {first}")
        parts.append(fp.conformal_scores(task.forecast(model, part, calibrated=False,
                                                       seed=seed), part.future))
    return np.concatenate(parts)


def _fallback(task) -> float:
    """The factor before a window holds enough ended forecasts: the validation one, or 1
    without calibration."""
    return task.stored_factor() if task.config.data.calibration != "none" else 1.0


def _recent_windows(task, series: list[Series], owners: list[int], windows,
                    length: int, gamma: float) -> list[tuple[int, int]]:
    """``(row of windows, origin)`` of the forecasts each series' factor is refitted on: its
    out-of-sample windows, the last ``length`` of them (every one with adaptation, whose
    level replays them from the file's first). Origins count rows of the history with its
    context, as the final origin does."""
    data = task.config.data
    chosen = []
    for position, index in enumerate(owners):
        rows = np.flatnonzero(windows.series == position)
        # each series' windows start at 0, 1, ... of its own rows (context first)
        origins = windows.starts[rows] - windows.starts[rows[0]] + data.lookback
        item = series[index]
        context = len(prepend_context(item.values, item.context, data.lookback)) - len(
            item.values)
        keep = _out_of_sample(task, item, origins - context)
        keep = keep if gamma else keep[-length:]
        chosen += [(int(rows[k]), int(origins[k])) for k in keep]
    return chosen


# Windows forecast per call: enough to amortise a call over a panel's small series, few
# enough that sample paths (data.samples per window) stay in moderate batches. Single runs of
# `rnnkit predict` over 300 series of the store panel, 14 windows each, autoregressive
# Student-t: 20.8 s with one call per series, 35 s with one call, 17.5 s in calls of 256. The
# window's cost against none: bench/predict_recalibration.py.
MAX_WINDOWS_PER_CALL = 256


def _out_of_sample(task, series: Series, first_steps: np.ndarray) -> np.ndarray:
    """The windows (by index) whose forecast steps all come after the run's training split:
    the errors of forecasts of values the model was fitted on are in-sample and too small
    (predicting from the training file itself would otherwise narrow the intervals).
    ``first_steps``: each window's first forecast step, as a row of ``series.values``. A
    series without time labels, or a run that did not record its training split's end
    (made before it did), keeps every window."""
    stored = (task.artifacts.get("contexts") or {}).get(series.series_id) or {}
    last = stored.get("train_last_time")
    if last is None or not series.times:
        return np.arange(len(first_steps))
    later = [time_key(series.times[step]) > time_key(last) for step in first_steps]
    return np.flatnonzero(later)
