"""``model.residual`` (forecasting): off unless set, passed with the season to the forecaster,
refused by name where it cannot apply; a residual model beats its plain twin on a seasonal
series with a drift."""

from __future__ import annotations

import numpy as np
import pytest
from tests.tasks.forecast_files import built_model, seasonal_series, series_config

from rnnkit import tasks
from rnnkit.tasks.errors import ConfigError


def _series(tmp_path, steps: int = 120):
    """A season of 6 whose level steps up each season: seasonal naive is off by the step."""
    level = 10 + 0.4 * (np.arange(steps) // 6)
    return seasonal_series(tmp_path / "s.csv", [0.0, 2.0, 3.0, 1.0, -1.0, -2.0], level, 0.05)


def _config(path, *overrides: str):
    return series_config(path, {"lookback": 12, "horizon": 6, "season": 6}, 40, *overrides)


def _model(tmp_path, *overrides: str):
    path = _series(tmp_path)
    return built_model(_config(path, *overrides), path)


@pytest.mark.parametrize(("overrides", "expected"), [
    ([], "none"),  # opt-in: it lost on noisy and covariate-driven series (README)
    (["model.residual=seasonal_naive"], "seasonal_naive"),
    (["model.residual=seasonal_naive", "model.strategy=autoregressive"], "seasonal_naive"),
    (["model.residual=none"], "none"),
])
def test_the_setting_reaches_the_forecaster_with_the_season(tmp_path, overrides, expected):
    model = _model(tmp_path, *overrides)
    assert (model.config.residual, model.config.season) == (expected, 6)


def test_a_season_longer_than_the_lookback_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.residual: 'seasonal_naive' repeats the last "
                                          r"data\.season=24 steps .* data\.lookback is 12"):
        _model(tmp_path, "data.season=24", "model.residual=seasonal_naive")


def test_a_bad_value_is_refused_by_name():
    with pytest.raises(ValueError, match=r"model\.residual: expected"):
        tasks.load_config(None, ["task=forecasting", "model.residual=naive"])


def test_the_residual_model_beats_its_plain_twin_and_seasonal_naive(tmp_path):
    path = _series(tmp_path)
    scores = {}
    for residual in ("none", "seasonal_naive"):
        tasks.train(_config(path, f"model.residual={residual}"), tmp_path / residual)
        run = tasks.load_run(tmp_path / residual)
        scores[residual] = run.evaluate(path)
    assert scores["seasonal_naive"]["mase"] < scores["none"]["mase"]
    assert scores["seasonal_naive"]["mase"] < 0.5 * scores["seasonal_naive"]["naive_mase"]
