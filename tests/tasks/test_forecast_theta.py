"""The Theta baseline computed for every window at once equals its one-series definition
(Hyndman & Billah 2003: SES with drift half the OLS slope, on the classically deseasonalised
series), written here as plain loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.tasks.forecast_baselines import ALPHAS, theta_forecast


def _indices(values: np.ndarray, season: int) -> tuple[np.ndarray, bool]:
    multiplicative = bool((values > 0).all())
    if season < 2 or len(values) < 2 * season:
        return (np.ones if multiplicative else np.zeros)(max(season, 1)), multiplicative
    weights = np.ones(season + 1 - season % 2)
    if season % 2 == 0:
        weights[[0, -1]] = 0.5
    trend = np.convolve(values, weights / season, mode="valid")
    start = len(weights) // 2
    part = values[start:start + len(trend)]
    detrended = part / trend if multiplicative else part - trend
    position = (start + np.arange(len(trend))) % season
    indices = np.array([detrended[position == p].mean() for p in range(season)])
    return (indices / indices.mean(), True) if multiplicative else (indices - indices.mean(),
                                                                     False)


def _theta(values: np.ndarray, horizon: int, season: int) -> np.ndarray:
    indices, multiplicative = _indices(values, season)
    period = max(season, 1)
    at = indices[np.arange(len(values)) % period]
    adjusted = values / at if multiplicative else values - at
    n = len(adjusted)
    slope = np.polyfit(np.arange(n), adjusted, 1)[0] if n > 1 else 0.0
    best_level, best_alpha, best_error = adjusted[-1], 1.0, np.inf
    for alpha in ALPHAS:
        level, error = adjusted[0], 0.0
        for value in adjusted[1:]:
            error += (value - level) ** 2
            level += alpha * (value - level)
        if error < best_error:
            best_level, best_alpha, best_error = level, alpha, error
    steps = np.arange(1, horizon + 1)
    ahead = best_level + slope / 2 * (steps - 1 + 1 / best_alpha
                                      - (1 - best_alpha) ** n / best_alpha)
    later = indices[(len(values) + np.arange(horizon)) % period]
    return ahead * later if multiplicative else ahead + later


@settings(max_examples=60, deadline=None)
@given(season=st.sampled_from([1, 2, 4, 7, 12]), lookback=st.integers(1, 40),
       shift=st.sampled_from([0.0, -10.0]), trend=st.floats(-1, 1), seed=st.integers(0, 99))
def test_every_window_gets_its_one_series_theta(season, lookback, shift, trend, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(lookback)
    history = (10 + shift + trend * t + 3 * np.sin(2 * np.pi * t / max(season, 1)))[None, :,
                                                                                     None] \
        + rng.standard_normal((6, lookback, 2))
    got = theta_forecast(history, 5, season)
    assert got.shape == (6, 5, 2)
    for window in range(6):
        for target in range(2):
            np.testing.assert_allclose(got[window, :, target],
                                       _theta(history[window, :, target], 5, season),
                                       rtol=1e-9, atol=1e-9)


def test_a_window_with_a_missing_value_gives_nan_and_leaves_the_others():
    history = 10 + np.random.default_rng(0).standard_normal((3, 14, 1))
    history[1, 4, 0] = np.nan
    got = theta_forecast(history, 3, 7)
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all()
    np.testing.assert_allclose(got[0, :, 0], _theta(history[0, :, 0], 3, 7), rtol=1e-9)


@pytest.mark.parametrize("season", [1, 4])
def test_a_constant_series_is_forecast_flat(season):
    np.testing.assert_allclose(theta_forecast(np.full((2, 12, 1), 5.0), 4, season), 5.0)
