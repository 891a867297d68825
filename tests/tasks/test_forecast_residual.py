"""``model.residual`` (forecasting): off unless set, passed with the season to the forecaster,
refused by name where it cannot apply; a residual model beats its plain twin on a seasonal
series with a drift."""

from __future__ import annotations

import numpy as np
import pytest
from tests.tasks.forecast_files import write_rows

from rnnkit import tasks
from rnnkit.tasks.config import apply_overrides, config_from_dict
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.forecasting import ForecastingTask


def _series(tmp_path, steps: int = 120):
    """A season of 6 whose level steps up each season: seasonal naive is off by the step."""
    rng = np.random.default_rng(0)
    t = np.arange(steps)
    values = 10 + np.array([0.0, 2.0, 3.0, 1.0, -1.0, -2.0])[t % 6] + 0.4 * (t // 6) \
        + 0.05 * rng.standard_normal(steps)
    return write_rows(tmp_path / "s.csv", ["t", "v"], [[i, f"{v:.4f}"] for i, v in
                                                        zip(t, values, strict=True)])


def _config(path, *overrides: str):
    """The run config, then ``overrides`` (``section.key=value``) as the command line gives them."""
    raw = {"task": "forecasting",
           "data": {"train": str(path), "time_column": "t", "format": "series", "lookback": 12,
                    "horizon": 6, "season": 6},
           "model": {"hidden_size": 16},
           "train": {"max_epochs": 40, "lr": 0.01, "progress": False, "seed": 0}}
    return config_from_dict(apply_overrides(raw, list(overrides)))


def _model(tmp_path, *overrides: str):
    path = _series(tmp_path)
    task = ForecastingTask.fit(_config(path, *overrides), path)
    task.fit_on_split(*task.hold_out(task.read(path)))
    return task.build_model()


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
