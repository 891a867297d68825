"""How precisely a coverage is known (`forecast_metrics.coverage_interval`): as many effective
values as independent draws when misses are independent, as many as distinct values (not
forecast steps) when stride-1 windows overlap, far fewer when misses come in bursts; Wilson's
interval checked against statsmodels; and the figures an evaluation and a backtest report."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.tasks import forecast_metrics as fm


def _windows(values: np.ndarray, horizon: int) -> np.ndarray:
    """Stride-1 windows over one series' inside flags: ``(origins, horizon, 1)``."""
    return np.stack([values[o:o + horizon] for o in range(len(values) - horizon + 1)])[..., None]


def test_independent_values_count_once_each():
    flags = np.random.default_rng(0).random(400) < 0.9
    result = fm.coverage_interval(flags[:, None, None], np.zeros(400, int), np.arange(400))
    assert 300 <= result["coverage_values"] <= 400
    assert result["coverage_low"] < flags.mean() < result["coverage_high"]


def test_overlapping_windows_count_distinct_values_not_forecast_steps():
    values = np.random.default_rng(1).random(203) < 0.9
    inside = _windows(values, 4)  # 200 origins x 4 steps = 800 scores of 203 values
    result = fm.coverage_interval(inside, np.zeros(len(inside), int), np.arange(len(inside)))
    assert 120 <= result["coverage_values"] <= 203


def test_bursts_of_misses_shrink_the_effective_count():
    values = np.ones(400, bool)
    for start in range(50, 400, 100):
        values[start:start + 10] = False  # 90% inside, misses in four bursts of ten
    inside = _windows(values, 4)
    result = fm.coverage_interval(inside, np.zeros(len(inside), int), np.arange(len(inside)))
    assert result["coverage_values"] < 100
    assert result["coverage_high"] - result["coverage_low"] > 0.08


def test_series_that_miss_together_count_as_one():
    values = np.ones(200, bool)
    values[30:45] = values[120:130] = False
    one = _windows(values, 4)
    origins = np.arange(len(one))
    single = fm.coverage_interval(one, np.zeros(len(one), int), origins)
    panel = fm.coverage_interval(np.concatenate([one, one]),
                                 np.repeat([0, 1], len(one)), np.concatenate([origins, origins]))
    assert panel["coverage_values"] == pytest.approx(single["coverage_values"])


def test_full_coverage_is_bounded_by_the_distinct_values():
    inside = np.ones((33, 4, 1), bool)  # stride-1 windows over 36 values, all inside
    result = fm.coverage_interval(inside, np.zeros(33, int), np.arange(33))
    assert result["coverage_values"] == 36 and result["coverage_high"] == 1.0
    z2 = 1.959963984540054 ** 2
    assert result["coverage_low"] == pytest.approx(36 / (36 + z2))


@settings(max_examples=40, deadline=None)
@given(share=st.floats(0.0, 1.0), count=st.floats(2.0, 5000.0),
       level=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_interval_matches_statsmodels(share, count, level):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    expected = proportion.proportion_confint(share * count, count, alpha=1 - level,
                                             method="wilson")
    assert fm.wilson_interval(share, count, level) == pytest.approx(expected, abs=1e-9)


def test_chance_inside_is_what_a_calibrated_forecaster_can_expect():
    assert fm.chance_inside(100) == pytest.approx(0.9044, abs=1e-4)  # 2 Φ(0.05 / 0.03) - 1
    assert fm.chance_inside(24) == pytest.approx(0.5858, abs=1e-4)
    assert fm.chance_inside(10_000) > 0.9999
    rng = np.random.default_rng(2)
    draws = rng.binomial(400, 0.9, size=20_000) / 400
    observed = np.mean(np.abs(draws - 0.9) <= 0.05)
    assert fm.chance_inside(400) == pytest.approx(observed, abs=0.01)


def test_one_entry_per_window_is_required():
    with pytest.raises(ValueError, match=r"series, origins: expected one entry per window"):
        fm.coverage_interval(np.ones((5, 2, 1), bool), np.zeros(4, int), np.arange(5))
