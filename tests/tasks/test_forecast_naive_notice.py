"""A run whose checkpoint forecasts validation no better than seasonal naive is told so once,
with its MASE, the baseline's and how long it trained; a run ahead of naive is not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.tasks.forecast_files import write_rows

from rnnkit import tasks
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.forecast_baselines import behind_naive_notice

pytestmark = pytest.mark.usefixtures("single_thread")


def record(mase, naive, **extra):
    return {"metrics": {"valid_mase": mase, "valid_naive_mase": naive}, **extra}


def test_behind_or_level_with_naive_is_noted_with_both_figures_and_the_training_length():
    text = behind_naive_notice(record(1.548, 1.293, epoch=55, step=1320), 12)
    assert text.startswith("validation MASE 1.548 is no better than seasonal naive's 1.293 "
                           "(each value one data.season = 12 steps earlier) after 55 epochs "
                           "(1320 optimiser steps)")
    assert "train.batch_size" in text and "rnnkit backtest" in text
    assert behind_naive_notice(record(0.8, 0.8), 1) is not None  # level is no better


def test_a_model_without_a_residual_is_pointed_to_one():
    plain = behind_naive_notice(record(1.5, 1.2), 12)
    assert "Setting model.residual: seasonal_naive (the network then corrects" in plain
    assert "residual" not in behind_naive_notice(record(1.5, 1.2), 12, "seasonal_naive")


@pytest.mark.parametrize("trainer_record", [
    record(0.61, 0.83, epoch=97, step=900),  # ahead of naive
    record(math.nan, 0.83),  # a diverged evaluation is reported elsewhere
    {"metrics": {"valid_loss": 0.1}},  # no MASE recorded
    {},
])
def test_nothing_is_noted_ahead_of_naive_or_without_both_figures(trainer_record):
    assert behind_naive_notice(trainer_record, 12) is None


def test_a_starved_run_on_a_clean_seasonal_series_is_told_once(tmp_path):
    # Seasonal naive forecasts a clean 12-step season almost exactly; two optimiser steps
    # leave the network far behind it.
    noise = 0.01 * np.random.default_rng(0).standard_normal(240)
    rows = [[t, f"{np.sin(2 * np.pi * t / 12) + noise[t]:.4f}"] for t in range(240)]
    train = write_rows(tmp_path / "season.csv", ["time", "value"], rows)
    raw = {"task": "forecasting",
           "data": {"train": str(train), "lookback": 24, "horizon": 12, "season": 12,
                    "time_column": "time"},
           "model": {"cell": "gru", "hidden_size": 8},
           "train": {"max_steps": 2, "eval_every": 2, "seed": 0, "progress": False}}
    notes = []
    tasks.train(config_from_dict(raw), tmp_path / "run", notice=notes.append)
    [note] = [n for n in notes if "seasonal naive" in n]
    assert note.startswith("validation MASE ")
    assert "data.season = 12 steps earlier) after " in note
    assert "(2 optimiser steps)" in note
