"""Forecast scores as the M-competitions and GluonTS report them, per series and aggregated.

- MASE per series (its own in-sample seasonal-naive MAE as the scale), averaged over series.
- sMAPE on the 0-200 scale over every value.
- Weighted quantile loss ``wQL[q] = 2 Σ pinball_q(y, ŷ_q) / Σ |y|`` averaged over the quantile
  levels (GluonTS ``mean_wQuantileLoss``, its CRPS approximation), and the closed-form CRPS of
  a Gaussian forecast normalised the same way.
- Coverage: the share of values inside the central interval.
"""

from __future__ import annotations

import numpy as np
import torch

QUANTILE_LEVELS = tuple(round(0.1 * k, 1) for k in range(1, 10))


def seasonal_scale(train: np.ndarray, season: int) -> np.ndarray:
    """In-sample MAE of the seasonal-naive forecast on ``train`` ``(time, targets)``:
    ``(targets,)``, the MASE denominator (1 where it is zero or undefined)."""
    season = max(1, min(season, len(train) - 1))
    if len(train) <= season:
        return np.ones(train.shape[-1])
    scale = np.abs(train[season:] - train[:-season]).mean(axis=0)
    return np.where(scale > 0, scale, 1.0)


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat each window's last ``season`` values (at most its lookback): ``history``
    ``(windows, lookback, targets)`` → ``(windows, horizon, targets)``."""
    season = max(1, min(season, history.shape[1]))
    steps = history.shape[1] - season + np.arange(horizon) % season
    return history[:, steps]


def mase_per_series(predicted: np.ndarray, actual: np.ndarray, series: np.ndarray,
                    scales: np.ndarray) -> np.ndarray:
    """MASE of each series: ``predicted``/``actual`` ``(windows, horizon, targets)``,
    ``series`` ``(windows,)`` indices, ``scales`` ``(series, targets)`` → ``(series_seen,)``
    (mean over targets), in order of first appearance."""
    result = []
    for index in dict.fromkeys(series.tolist()):
        rows = series == index
        error = np.abs(predicted[rows] - actual[rows]).mean(axis=(0, 1))
        result.append(float((error / scales[index]).mean()))
    return np.asarray(result)


def smape(predicted: np.ndarray, actual: np.ndarray) -> float:
    """``200/n Σ |F - A| / (|A| + |F|)``; terms with both zero count as 0."""
    denominator = np.abs(actual) + np.abs(predicted)
    terms = np.where(denominator > 0, np.abs(predicted - actual) / np.where(
        denominator > 0, denominator, 1.0), 0.0)
    return float(200.0 * terms.mean())


def gaussian_quantiles(mean: np.ndarray, std: np.ndarray,
                       levels: tuple[float, ...] = QUANTILE_LEVELS) -> dict[float, np.ndarray]:
    """``{q: mean + std · Φ⁻¹(q)}`` for each level."""
    normal = torch.distributions.Normal(0.0, 1.0)
    return {q: mean + std * float(normal.icdf(torch.tensor(q))) for q in levels}


def weighted_quantile_loss(quantiles: dict[float, np.ndarray], actual: np.ndarray) -> float:
    """GluonTS ``mean_wQuantileLoss``: mean over ``q`` of ``2 Σ pinball_q / Σ |y|``."""
    total = max(float(np.abs(actual).sum()), 1e-12)
    losses = []
    for q, forecast in quantiles.items():
        error = actual - forecast
        losses.append(2.0 * float(np.maximum(q * error, (q - 1.0) * error).sum()) / total)
    return float(np.mean(losses))


def gaussian_crps(mean: np.ndarray, std: np.ndarray, actual: np.ndarray) -> float:
    """Σ CRPS(N(mean, std²), y) / Σ |y|, the closed form of Gneiting & Raftery (2007)."""
    z = (actual - mean) / std
    normal = torch.distributions.Normal(0.0, 1.0)
    z_t = torch.as_tensor(z, dtype=torch.float64)
    pdf, cdf = normal.log_prob(z_t).exp().numpy(), normal.cdf(z_t).numpy()
    crps = std * (z * (2 * cdf - 1) + 2 * pdf - 1 / np.sqrt(np.pi))
    return float(crps.sum() / max(float(np.abs(actual).sum()), 1e-12))


def coverage(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray) -> float:
    """Share of ``actual`` values within ``[lower, upper]``."""
    return float(np.mean((actual >= lower) & (actual <= upper)))


def sample_crps(samples: np.ndarray, actual: np.ndarray) -> float:
    """Σ CRPS(samples, y) / Σ |y| with the ensemble estimator ``E|X - y| - ½ E|X - X'|``
    (Gneiting & Raftery 2007, eq. 21; ``n²`` in the second term's denominator, as
    ``properscoring.crps_ensemble``): ``samples`` ``(n, *actual.shape)``."""
    n = samples.shape[0]
    spread_to_truth = np.abs(samples - actual).mean(axis=0)
    ordered = np.sort(samples, axis=0)
    # Σ_{i,j} |x_i - x_j| = 2 Σ_i (2i - n + 1) x_(i) over the sorted draws (i from 0).
    weights = (2 * np.arange(n) - n + 1).reshape((n,) + (1,) * actual.ndim)
    pairwise = 2.0 * (weights * ordered).sum(axis=0) / n**2
    crps = spread_to_truth - 0.5 * pairwise
    return float(crps.sum() / max(float(np.abs(actual).sum()), 1e-12))
