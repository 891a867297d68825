"""Probabilistic forecasts at the task level: which likelihood fits the data, the quantile
levels a quantile model learns, split-conformal calibration of interval widths, and the
scores of a :class:`~rnnkit.models.Forecast` (coverage, wQL, CRPS).

Calibration (split-conformal, Vovk et al. 2005; the scaled-width variant NeuralForecast and
Darts offer): on validation windows, each value's score is how many half-widths of its
interval it lies from the median, ``max((m - y) / (m - lower), (y - m) / (upper - m))``. The
factor ``c`` is the ``ceil((n + 1) · interval) / n`` empirical quantile of the ``n`` scores,
and every interval, quantile and sample is moved to ``m + c · (value - m)``: ``c > 1`` widens
an interval that under-covered, ``c < 1`` narrows one that over-covered. The guarantee holds
for values exchangeable with the validation ones; a series whose noise changes later is
covered less.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from rnnkit.data import DataFormatError
from rnnkit.tasks import forecast_metrics as fm
from rnnkit.tasks.errors import ConfigError

DEFAULT_QUANTILES = (0.05, *fm.QUANTILE_LEVELS, 0.95)


def quantile_levels(likelihood: str, quantiles: list[float] | None,
                    interval: float) -> list[float] | None:
    """The levels a quantile model learns: ``model.quantiles`` (default 0.05, 0.1, ..., 0.9,
    0.95) plus the median and the two ends of ``data.interval``; ``None`` for other models."""
    if likelihood != "quantile":
        if quantiles is not None:
            raise ConfigError(f"model.quantiles: set only with model.likelihood: quantile (the "
                              f"likelihood is {likelihood}), got {quantiles}")
        return None
    levels = list(DEFAULT_QUANTILES if quantiles is None else quantiles)
    outside = [q for q in levels if not 0.0 < q < 1.0]
    if outside or not levels:
        raise ConfigError(f"model.quantiles: expected levels in (0, 1), got {quantiles}")
    tail = (1.0 - interval) / 2.0
    return sorted({round(float(q), 6) for q in (*levels, 0.5, tail, 1.0 - tail)})


def check_likelihood(likelihood: str, normalize: str, targets: list[np.ndarray],
                     path: str) -> None:
    """A count likelihood needs counts, in their own units (``data.normalize: global``, which
    the model undoes exactly; per-window shifts would leave it modelling differences)."""
    if likelihood != "negative_binomial":
        return
    if normalize != "global":
        raise ConfigError("model.likelihood: negative_binomial models counts in their own units "
                          f"and needs data.normalize: global, got {normalize!r}")
    for values in targets:
        bad = values[(values < 0) | (values != np.round(values))]
        if bad.size:
            raise DataFormatError(path, None, "model.likelihood: negative_binomial expects "
                                  f"counts (whole numbers >= 0), found {bad[0]:g}")


def derived_seed(seed: int, key: str) -> int:
    """The seed of one independent stream of sample paths: ``seed`` mixed with ``key`` (a
    series' id in ``predict``, an origin in a retraining backtest, a slice of windows) by a
    hash that is the same in every process, so the draws repeat from run to run. Forecasts
    drawn one call at a time with one seed for all would share their standard draws: each
    series' paths perfectly correlated with every other's (a sum over series, a region's
    total, would get intervals as wide as the sum of the series' own), and the sampling error
    of an interval repeated at every origin of a backtest instead of averaging out."""
    digest = hashlib.blake2b(f"{seed}/{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # within torch.manual_seed's range


def conformal_factor(forecast, future: np.ndarray, interval: float) -> float:
    """The split-conformal width factor from uncalibrated ``forecast`` (median, lower, upper
    ``(windows, horizon, targets)``) and the true ``future`` of the same shape."""
    return conformal_quantile(conformal_scores(forecast, future), interval)


def conformal_scores(forecast, future: np.ndarray) -> np.ndarray:
    """Per forecast value, how many half-widths of its uncalibrated interval the truth lies
    from the median: ``(windows, horizon, targets)``."""
    median, lower, upper = (_numpy(forecast.median), _numpy(forecast.lower),
                            _numpy(forecast.upper))
    tiny = 1e-9 * max(1.0, float(np.abs(future).max(initial=0.0)))
    below = (median - future) / np.maximum(median - lower, tiny)
    above = (future - median) / np.maximum(upper - median, tiny)
    return np.maximum(below, above)


def conformal_quantile(scores: np.ndarray, interval: float) -> float:
    """The ``ceil((n + 1) · interval) / n`` empirical quantile of ``n`` ``scores``: the factor
    that puts ``interval`` of values exchangeable with them inside their widened interval.
    Levels outside (0, 1), as adaptive calibration may ask for, give the smallest or largest
    score."""
    ordered = np.sort(np.asarray(scores).ravel())
    rank = math.ceil((len(ordered) + 1) * interval)
    return float(ordered[min(max(rank, 1), len(ordered)) - 1])


def widen(forecast, factor: float | np.ndarray):
    """Move every interval end, quantile and sample of ``forecast`` to ``median + factor ·
    (value - median)`` (and scale ``std``); the point forecast is unchanged. ``factor``: one
    number, one per window ``(windows,)`` or one per window and step ``(windows, horizon)``."""
    if forecast.median is None or (np.ndim(factor) == 0 and factor == 1.0):
        return forecast
    median = forecast.median
    if np.ndim(factor):
        factor = torch.as_tensor(np.asarray(factor), dtype=median.dtype, device=median.device)
        factor = factor.reshape(*factor.shape, *(1,) * (3 - factor.ndim))

    def scaled(values):
        return median + factor * (values - median)

    forecast.lower, forecast.upper = scaled(forecast.lower), scaled(forecast.upper)
    if forecast.quantiles is not None:
        forecast.quantiles = {q: scaled(v) for q, v in forecast.quantiles.items()}
    if forecast.samples is not None:
        forecast.samples = scaled(forecast.samples)
    if forecast.std is not None:
        forecast.std = forecast.std * factor
    return forecast


def probabilistic_scores(forecast, future: np.ndarray) -> dict[str, float]:
    """``coverage`` of the interval, ``wql`` over :data:`~fm.QUANTILE_LEVELS` and ``crps``
    (closed form for Gaussian forecasts, else from the sample paths), GluonTS-normalised."""
    result = {"coverage": fm.coverage(_numpy(forecast.lower), _numpy(forecast.upper), future)}
    if forecast.quantiles is not None:
        quantiles = {q: _numpy(forecast.quantiles[q]) for q in fm.QUANTILE_LEVELS}
        result["wql"] = fm.weighted_quantile_loss(quantiles, future)
    if forecast.std is not None:
        result["crps"] = fm.gaussian_crps(_numpy(forecast.median), _numpy(forecast.std), future)
    elif forecast.samples is not None:
        result["crps"] = fm.sample_crps(_numpy(forecast.samples), future)
    return result


def coverage_interval(forecast, windows) -> dict[str, float]:
    """:func:`~fm.coverage_interval` of ``forecast``'s intervals over evaluation ``windows``,
    which are cut one horizon apart, in time order within each series."""
    future = windows.future
    inside = (future >= _numpy(forecast.lower)) & (future <= _numpy(forecast.upper))
    # each window's rank within its series (in time order): a stable sort keeps that order
    order = np.argsort(windows.series, kind="stable")
    firsts = np.flatnonzero(np.r_[True, np.diff(windows.series[order]) != 0])
    ordinal = np.empty(len(order), dtype=np.int64)
    ordinal[order] = np.arange(len(order)) - np.repeat(firsts, np.diff(np.r_[firsts,
                                                                             len(order)]))
    return fm.coverage_interval(inside, windows.series, ordinal * future.shape[1])


def _numpy(values) -> np.ndarray:
    return values.detach().cpu().double().numpy()
