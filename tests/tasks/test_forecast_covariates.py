"""Covariates are used: a series whose future depends only on a known future covariate is
forecast well with it and cannot be without it; a static covariate carries what the history
cannot show."""

from __future__ import annotations

import pytest
from tests.tasks.forecast_files import promotion_series, signed_panel

from rnnkit import tasks
from rnnkit.tasks.config import config_from_dict

pytestmark = pytest.mark.usefixtures("single_thread")


def _train(tmp_path, name: str, data: dict, steps: int = 300) -> tasks.Run:
    raw = {"task": "forecasting",
           "data": {"lookback": 4, "horizon": 3, "normalize": "global", "time_column": "time",
                    **data},
           "model": {"cell": "gru", "hidden_size": 16, "gaussian": False},
           "train": {"lr": 0.01, "batch_size": 32, "max_steps": steps, "eval_every": steps,
                     "seed": 0, "progress": False, "patience": 100}}
    tasks.train(config_from_dict(raw), tmp_path / name)
    return tasks.load_run(tmp_path / name)


def test_future_covariate_is_used_and_past_only_cannot(tmp_path):
    train, test = promotion_series(tmp_path)
    future = _train(tmp_path, "future", {"train": str(train), "future_covariates": ["promo"]})
    past = _train(tmp_path, "past", {"train": str(train), "past_covariates": ["promo"]})
    with_future, past_only = future.evaluate(test), past.evaluate(test)
    assert with_future["mae"] < 0.25  # noise 0.05; the promotions decide everything else
    assert past_only["mae"] > 0.7  # a coin flip of size 2 nobody told it about: MAE ~ 1
    assert with_future["mase"] < 0.3 < past_only["mase"]


def test_forecast_from_a_file_ending_in_future_covariates(tmp_path):
    train, _ = promotion_series(tmp_path)
    run = _train(tmp_path, "future", {"train": str(train), "future_covariates": ["promo"]})
    lines = train.read_text().splitlines()
    ask = tmp_path / "ask.csv"
    ask.write_text("\n".join([*lines[:-3], "900,,1", "901,,0", "902,,1"]) + "\n")
    rows = run.predict([run.task.read(ask)])
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert [round(row["value"]) for row in rows] == [2, 0, 2]
    short = tmp_path / "short.csv"
    short.write_text("\n".join([*lines[:-3], "900,,1"]) + "\n")
    with pytest.raises(ValueError, match=r"short\.csv: expected 3 rows after the last observed"):
        run.predict([run.task.read(short)])


def test_static_covariate_is_used_across_a_panel(tmp_path):
    train, test = signed_panel(tmp_path)
    data = {"train": str(train), "lookback": 1, "horizon": 2, "value_columns": ["value"],
            "future_covariates": ["x"]}
    with_static = _train(tmp_path, "static", {**data, "static_covariates": ["sign"]}, 200)
    without = _train(tmp_path, "plain", data, 200)
    scored, blind = with_static.evaluate(test), without.evaluate(test)
    assert scored["mae"] < 0.3
    assert blind["mae"] > 0.6  # the sign is a coin flip to it: the best guess is 0, MAE ~ 0.8
