"""On real data (elecdaily, bundled): the example config's future covariates (working day,
temperature) make the held-out week-ahead forecasts better than the same model without them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit import tasks
from rnnkit.data.datasets import load_sample
from rnnkit.tasks.backtest import BacktestSettings, run_backtest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "electricity_covariates.yaml"
# Short training (120 steps, about 4 epochs) so the pair trains in a few seconds.
SHORT = ["train.max_steps=120", "train.eval_every=40", "train.max_epochs=1000",
         "train.progress=false", "train.seed=0"]


pytestmark = pytest.mark.usefixtures("single_thread")


def _backtest(tmp_path, name: str, overrides: list[str]) -> dict[str, float]:
    """Train the example with ``overrides`` and score every origin of the test split (50
    week-ahead forecasts: a steadier estimate than the 8 non-overlapping weeks)."""
    config = tasks.load_config(EXAMPLE, [*SHORT, *overrides])
    tasks.train(config, tmp_path / name)
    run = tasks.load_run(tmp_path / name)
    test = load_sample("elecdaily").paths["test"]
    return run_backtest(run, test, BacktestSettings(stride=1)).aggregate


def test_future_covariates_beat_the_same_model_without_them(tmp_path):
    with_covariates = _backtest(tmp_path, "covariates", [])
    without = _backtest(tmp_path, "plain", ["data.future_covariates=null"])
    assert with_covariates["origins"] == without["origins"] == 50
    # Seed 0: 0.45 against 0.74. Over seeds 0-2 the gap was 0.30-0.35, so ask for 0.2.
    assert with_covariates["mase"] < without["mase"] - 0.2
    # The Theta baseline (0.76 on these origins) is about as good as the model without
    # covariates (0.74-0.78 over seeds 0-2); with them the model beats it by 0.32-0.33.
    assert with_covariates["mase"] < with_covariates["theta_mase"] - 0.2
    assert 0.5 < with_covariates["coverage"] <= 1.0
