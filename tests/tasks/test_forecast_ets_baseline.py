"""The ETS baseline (statsforecast's AutoETS, where installed): the library's own forecast per
window, a seasonal-naive fallback, left out when too costly or absent, and reported by
evaluations and backtests (not by training's validation passes)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from statsforecast.models import AutoETS  # pinned in requirements.txt: the set-up installs it
from tests.tasks.forecast_files import write_rows

from rnnkit import tasks
from rnnkit.tasks import forecast_baselines as fb
from rnnkit.tasks.backtest import BacktestSettings, run_backtest
from rnnkit.tasks.config import config_from_dict

pytestmark = pytest.mark.usefixtures("single_thread")


def seasonal_trend(steps: int, seed: int = 0) -> np.ndarray:
    t = np.arange(steps)
    noise = np.random.default_rng(seed).normal(0.0, 0.5, steps)
    return 50 + 0.3 * t + 8 * np.sin(2 * np.pi * t / 12) + noise


def test_each_window_and_target_gets_the_library_forecast():
    values = seasonal_trend(60)
    history = np.stack([values[:36], values[12:48]])[..., None]  # (2 windows, 36, 1 target)
    history = np.concatenate([history, -history], axis=-1)  # a second target
    got = fb.ets_forecast(history, 6, 12)
    assert got.shape == (2, 6, 2)
    for window in range(2):
        for target in range(2):
            expected = AutoETS(season_length=12).forecast(y=history[window, :, target], h=6)
            np.testing.assert_allclose(got[window, :, target], expected["mean"])


def test_it_beats_seasonal_naive_on_a_trend_with_a_season():
    values = seasonal_trend(200, seed=1)
    starts = range(0, 150, 6)
    history = np.stack([values[s:s + 36] for s in starts])[..., None]
    future = np.stack([values[s + 36:s + 48] for s in starts])[..., None]
    ets_error = np.abs(fb.ets_forecast(history, 12, 12) - future).mean()
    naive_error = np.abs(fb.seasonal_naive(history, 12, 12) - future).mean()
    assert ets_error < 0.5 * naive_error  # the naive forecast misses a year of trend


@pytest.mark.parametrize("lookback", [20, 24])
def test_with_two_seasons_or_fewer_the_series_is_deseasonalised_as_for_theta(lookback):
    """AutoETS drops a season it cannot fit; the classical indices (from two seasons) keep
    it, and without two seasons they are neutral."""
    values = seasonal_trend(60)[:lookback]
    plain = AutoETS(season_length=1)
    expected = fb.deseasonalised(lambda y: plain.forecast(y=y, h=3)["mean"], values, 3, 12)
    np.testing.assert_allclose(fb.ets_forecast(values[None, :, None], 3, 12)[0, :, 0],
                               expected)
    if lookback == 20:
        np.testing.assert_allclose(expected, plain.forecast(y=values, h=3)["mean"])


def test_two_seasons_of_history_still_beat_seasonal_naive():
    values = seasonal_trend(240)
    starts = range(0, 200, 6)
    history = np.stack([values[s:s + 24] for s in starts])[..., None]
    future = np.stack([values[s + 24:s + 30] for s in starts])[..., None]
    ets_error = np.abs(fb.ets_forecast(history, 6, 12) - future).mean()
    naive_error = np.abs(fb.seasonal_naive(history, 6, 12) - future).mean()
    assert ets_error < 0.5 * naive_error


def test_a_failed_fit_falls_back_to_seasonal_naive(monkeypatch):
    def refuse(self, y, h, **_):
        raise NotImplementedError("tiny datasets")

    monkeypatch.setattr(AutoETS, "forecast", refuse)
    history = seasonal_trend(36)[None, :, None]
    np.testing.assert_array_equal(fb.ets_forecast(history, 5, 12),
                                  fb.seasonal_naive(history, 5, 12))


def test_left_out_when_absent_tiny_or_too_costly(monkeypatch):
    assert fb.ets_forecast(np.ones((2, fb.ETS_MIN_HISTORY - 1, 1)), 2, 1) is None
    many = np.ones((fb.ETS_MAX_FITS + 1, 8, 1))
    with pytest.warns(UserWarning, match=r"ETS baseline is left out .* 301 AutoETS fits"):
        assert fb.ets_forecast(many, 2, 1) is None
    monkeypatch.setitem(sys.modules, "statsforecast.models", None)  # as if not installed
    assert fb.ets_forecast(np.ones((2, 12, 1)), 2, 1) is None


def _run(tmp_path):
    values = seasonal_trend(240)
    path = write_rows(tmp_path / "s.csv", ["t", "v"], [[i, f"{v:.3f}"] for i, v in
                                                        enumerate(values)])
    raw = {"task": "forecasting",
           "data": {"train": str(path), "time_column": "t", "format": "series",
                    "lookback": 24, "horizon": 6, "season": 12},
           "model": {"hidden_size": 8},
           "train": {"max_steps": 20, "eval_every": 20, "seed": 0, "progress": False}}
    outcome = tasks.train(config_from_dict(raw), tmp_path / "run")
    return outcome, tasks.load_run(tmp_path / "run"), path


def test_evaluations_and_backtests_report_it_training_does_not(tmp_path):
    outcome, run, path = _run(tmp_path)
    assert "valid_theta_mase" in outcome.fit.metrics and "valid_ets_mase" not in outcome.fit.metrics
    scores = run.evaluate(path)
    assert 0 < scores["ets_mase"] < scores["naive_mase"]
    result = run_backtest(run, path, BacktestSettings(stride=12))
    assert all("ets_mase" in origin for origin in result.origins)
    assert result.aggregate["ets_mase"] == pytest.approx(
        np.mean([origin["ets_mase"] for origin in result.origins]))
