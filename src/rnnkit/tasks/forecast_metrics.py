"""Forecast scores as the M-competitions and GluonTS report them, per series and aggregated.

- MASE per series (its own in-sample seasonal-naive MAE as the scale), averaged over series.
- sMAPE on the 0-200 scale over every value.
- Weighted quantile loss ``wQL[q] = 2 Σ pinball_q(y, ŷ_q) / Σ |y|`` averaged over the quantile
  levels (GluonTS ``mean_wQuantileLoss``, its CRPS approximation), and the closed-form CRPS of
  a Gaussian forecast normalised the same way.
- Coverage: the share of values inside the central interval, and how precisely a backtest
  knows it (:func:`coverage_interval`).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import torch

QUANTILE_LEVELS = tuple(round(0.1 * k, 1) for k in range(1, 10))
BLOCK_SCALE = 2.0  # coverage_interval's blocks: at least 2 · origins^(1/3) origins


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
    return float(smape_terms(predicted, actual).mean())


def smape_terms(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Each value's ``200 |F - A| / (|A| + |F|)`` (0 where both are zero), shaped as
    ``actual``: :func:`smape` is their mean."""
    denominator = np.abs(actual) + np.abs(predicted)
    return 200.0 * np.where(denominator > 0, np.abs(predicted - actual) / np.where(
        denominator > 0, denominator, 1.0), 0.0)


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


def coverage_interval(inside: np.ndarray, series: np.ndarray, origins: np.ndarray,
                      level: float = 0.95, draws: int = 2000,
                      seed: int = 0) -> dict[str, float]:
    """How precisely a backtest's coverage is known: a ``level`` interval for the share of
    values inside their intervals, from ``inside`` ``(windows, horizon, targets)`` booleans,
    each window's ``series`` index and ``origins`` (its first forecast step, in steps of its
    own series).

    Overlapping windows score a value up to ``horizon`` times and misses come in bursts, so
    the values are not independent draws. A moving-block bootstrap over forecast origins
    measures the coverage's variance: blocks span a horizon and at least ``2 · P^(1/3)`` of
    the ``P`` origins (the usual rate for the block length), and the windows of a panel at the
    same distance before their series' last origin move together, so shocks common to the
    series stay together. The effective number of independent values is the one a binomial
    share with that variance would need, capped at the number of distinct values scored.
    Bursts of misses longer than a block still make the interval too narrow: with misses
    from an AR(1) process of coefficient 0.8, the 95% interval held the true share 79% of the
    time over 100 origins and 87% over 400 (independent values: 93-97%).
    The interval is Wilson's score interval for that many values, which stays sensible at a
    coverage of 0 or 1, where a bootstrap has no spread (there the distinct values count).

    Returns ``coverage_low``, ``coverage_high`` and ``coverage_values`` (the effective
    number of independent values)."""
    inside = np.asarray(inside, dtype=bool)
    windows, horizon, targets = inside.shape
    series, origins = np.asarray(series), np.asarray(origins, dtype=np.int64)
    if series.shape != (windows,) or origins.shape != (windows,):
        raise ValueError(f"series, origins: expected one entry per window ({windows},), got "
                         f"{series.shape} and {origins.shape}")
    steps = (origins[:, None] + np.arange(horizon)).ravel()
    distinct = len(np.unique(np.stack([np.repeat(series, horizon), steps]), axis=1)[0]) * targets
    share = float(inside.mean())
    ids, owner = np.unique(series, return_inverse=True)
    last = np.full(len(ids), np.iinfo(np.int64).min)
    np.maximum.at(last, owner, origins)  # each series' last origin
    aligned = origins - last[owner]
    positions, slot = np.unique(aligned, return_inverse=True)
    hits = np.bincount(slot, weights=inside.reshape(windows, -1).sum(axis=1))
    counts = np.bincount(slot, minlength=len(positions)) * float(horizon * targets)
    spacing = int(np.diff(positions).min()) if len(positions) > 1 else horizon
    length = min(len(positions), max(-(-horizon // spacing),
                                      int(np.ceil(BLOCK_SCALE * len(positions) ** (1 / 3)))))
    variance = _block_bootstrap_variance(hits, counts, length, draws, seed)
    effective = float(distinct)
    if 0.0 < share < 1.0 and variance > 0.0:
        effective = min(effective, share * (1.0 - share) / variance)
    low, high = wilson_interval(share, effective, level)
    return {"coverage_low": low, "coverage_high": high, "coverage_values": effective}


def _block_bootstrap_variance(hits: np.ndarray, counts: np.ndarray, length: int, draws: int,
                              seed: int) -> float:
    """Variance of ``Σ hits / Σ counts`` over ``draws`` moving-block resamples of the
    positions (``ceil(positions / length)`` blocks of ``length`` consecutive ones each)."""
    starts = np.random.default_rng(seed).integers(
        0, len(hits) - length + 1, size=(draws, -(-len(hits) // length)))
    hit_sums = np.concatenate([[0.0], np.cumsum(hits)])
    count_sums = np.concatenate([[0.0], np.cumsum(counts)])
    shares = (hit_sums[starts + length] - hit_sums[starts]).sum(axis=1) / \
        (count_sums[starts + length] - count_sums[starts]).sum(axis=1)
    return float(shares.var())


def wilson_interval(share: float, count: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a binomial ``share`` observed on ``count`` trials (which
    may be an effective, non-integer number)."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    denominator = 1.0 + z * z / count
    centre = (share + z * z / (2 * count)) / denominator
    half = z / denominator * np.sqrt(share * (1 - share) / count + z * z / (4 * count * count))
    return max(0.0, centre - half), min(1.0, centre + half)


def chance_inside(count: float, nominal: float = 0.9, tolerance: float = 0.05) -> float:
    """The chance that a perfectly calibrated forecaster's coverage, measured on ``count``
    independent values, lands within ``nominal ± tolerance`` (normal approximation): what a
    coverage target of that width can ask of a test set that size."""
    spread = np.sqrt(nominal * (1 - nominal) / count)
    return 2 * NormalDist().cdf(tolerance / spread) - 1
