"""``model.head`` (forecasting): the final state unless set, passed to the forecaster, refused
by name where it cannot apply, and a per-step run trains, saves, loads and predicts."""

from __future__ import annotations

import numpy as np
import pytest
from tests.tasks.forecast_files import built_model, seasonal_series, series_config

from rnnkit import tasks
from rnnkit.tasks.errors import ConfigError

pytestmark = pytest.mark.usefixtures("single_thread")


def _series(tmp_path, steps: int = 96):
    """A season of 4 over a slow rise, with a little noise."""
    return seasonal_series(tmp_path / "s.csv", [1.0, -1.0, 2.0, 0.0],
                           5 + 0.05 * np.arange(steps), 0.1)


def _config(path, *overrides: str):
    return series_config(path, {"lookback": 8, "horizon": 4, "season": 4}, 30, *overrides)


def _model(tmp_path, *overrides: str):
    path = _series(tmp_path)
    return built_model(_config(path, *overrides), path)


@pytest.mark.parametrize(("overrides", "expected"), [
    ([], "final_state"), (["model.head=per_step"], "per_step"),
    (["model.head=final_state"], "final_state")])
def test_the_setting_reaches_the_forecaster(tmp_path, overrides, expected):
    assert _model(tmp_path, *overrides).config.head == expected


def test_a_horizon_longer_than_the_lookback_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.head: 'per_step' reads each of the "
                                          r"data\.horizon=12 steps .* data\.lookback is 8"):
        _model(tmp_path, "data.horizon=12", "model.head=per_step")


def test_an_autoregressive_per_step_model_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"model: ForecasterConfig\.head: expected "
                                         r"'final_state' for strategy='autoregressive'"):
        _model(tmp_path, "model.head=per_step", "model.strategy=autoregressive")


def test_a_per_step_run_trains_reloads_and_beats_seasonal_naive(tmp_path):
    path = _series(tmp_path)
    run_dir = tmp_path / "run"
    tasks.train(_config(path, "model.head=per_step"), run_dir)
    run = tasks.load_run(run_dir)
    assert run.model.config.head == "per_step"
    metrics = run.evaluate(path)
    assert metrics["mase"] < metrics["naive_mase"]  # the rise makes seasonal naive lag a year
    rows = run.predict([run.task.read(path)])
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
