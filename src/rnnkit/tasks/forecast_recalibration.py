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
    parts, where, finals = [], [], []
    for index, item in enumerate(series):
        values = prepend_context(item.values, item.context, data.lookback)
        finals.append((index, len(values)))  # the origin forecast from, with the context
        if len(values) < data.lookback + data.horizon:  # no forecast of it has ended
            continue
        windows = lazy_windows([item], task.roles, data.lookback, data.horizon)
        origins = windows.starts + data.lookback  # each window's first forecast step
        rows = _out_of_sample(task, item, origins - (len(values) - len(item.values)))
        # Without adaptation only the last `length` ended forecasts count; with it, the
        # level replays every one, from the file's first.
        rows = rows[-length:] if not gamma else rows
        if len(rows):
            parts.append(windows.take(rows))
            where += [(index, int(origin)) for origin in origins[rows]]
    targets = len(task.roles.targets)
    scores = np.zeros((0, data.horizon, targets))
    for chunk in _chunks(parts):
        recent = _joined(chunk)
        scores = np.concatenate([scores, fp.conformal_scores(
            task.forecast(model, recent, calibrated=False), recent.future)])
    # Each forecast itself as a last window: its own score is never used for its factor.
    scores = np.concatenate([scores, np.zeros((len(finals), data.horizon, targets))])
    fallback = task._stored_factor() if data.calibration != "none" else 1.0
    factors = rolling_factors(scores, [*where, *finals], data.horizon, length, data.interval,
                              fallback, gamma, per_step=data.calibration_per_step)
    return [factors[len(where) + i:len(where) + i + 1] for i in range(len(series))]


# Windows forecast per call: enough to amortise a call over a panel's small series, few
# enough that sample paths (data.samples per window) stay in moderate batches. Single runs of
# `rnnkit predict` over 300 series of the store panel, 14 windows each, autoregressive
# Student-t: 20.8 s with one call per series, 35 s with one call, 17.5 s in calls of 256. The
# window's cost against none: bench/predict_recalibration.py.
MAX_WINDOWS_PER_CALL = 256


def _chunks(parts: list[Windows]) -> list[list[Windows]]:
    """``parts`` in consecutive groups of at most :data:`MAX_WINDOWS_PER_CALL` windows (a part
    larger than that alone)."""
    chunks: list[list[Windows]] = []
    size = MAX_WINDOWS_PER_CALL
    for part in parts:
        if chunks and size + len(part.history) <= MAX_WINDOWS_PER_CALL:
            chunks[-1].append(part)
            size += len(part.history)
        else:
            chunks.append([part])
            size = len(part.history)
    return chunks


def _joined(parts: list[Windows]) -> Windows:
    """One :class:`Windows` of several series' windows (each part's ``series`` indices kept:
    every part here holds one series, index 0, so they are renumbered in order)."""
    def stacked(name: str) -> np.ndarray | None:
        arrays = [getattr(part, name) for part in parts]
        return None if arrays[0] is None else np.concatenate(arrays)

    owners = np.concatenate([np.full(len(part.history), i) for i, part in enumerate(parts)])
    return Windows(stacked("history"), stacked("future"), stacked("covariates"),
                   stacked("static"), owners, tuple(p.ids[0] for p in parts))


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
