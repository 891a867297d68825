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
calibration replays every window of the file, from its first, as a backtest does).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from rnnkit.data.readers.panel import time_key
from rnnkit.data.windows import prepend_context
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.backtest import rolling_factors
from rnnkit.tasks.forecast_data import Series, lazy_windows


def latest_factor(task, model: nn.Module, series: Series,
                  window: int | None = None) -> np.ndarray | None:
    """The conformal factor of a forecast from the end of ``series`` for the forecasting
    ``task``: ``(1,)``, or ``(1, horizon)`` with ``data.calibration_per_step``. ``window``:
    the ended forecasts it is refitted on (``None``: ``data.calibration_window``). ``None``
    without a window or for point forecasts (the run's fixed factor, if any, applies). With
    fewer than ``window`` ended forecasts in the history, the run's validation factor, as in
    a backtest."""
    data = task.config.data
    length = data.calibration_window if window is None else window
    length = length or 0
    if not length or task.likelihood == "none":
        return None
    gamma = data.calibration_adapt or 0.0
    fallback = task._stored_factor() if data.calibration != "none" else 1.0
    values = prepend_context(series.values, series.context, data.lookback)
    final = len(values)  # the origin forecast from, in rows of the history with its context
    where, scores = [], np.zeros((0, data.horizon, len(task.roles.targets)))
    if final >= data.lookback + data.horizon:  # else no forecast of the history has ended
        windows = lazy_windows([series], task.roles, data.lookback, data.horizon)
        origins = windows.starts + data.lookback  # each window's first forecast step
        rows = _out_of_sample(task, series, origins - (final - len(series.values)))
        # Without adaptation only the last `length` ended forecasts count; with it, the
        # level replays every one, from the file's first.
        rows = rows[-length:] if not gamma else rows
        if len(rows):
            recent = windows.take(rows)
            forecast = task.forecast(model, recent, calibrated=False)
            scores = fp.conformal_scores(forecast, recent.future)
            where = [(0, int(origin)) for origin in origins[rows]]
    # The forecast itself as the last window: its own score is never used for its factor.
    scores = np.concatenate([scores, np.zeros((1, *scores.shape[1:]))])
    factors = rolling_factors(scores, [*where, (0, final)], data.horizon, length, data.interval,
                              fallback, gamma, per_step=data.calibration_per_step)
    return factors[-1:]


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
