"""A series whose validation values leave its training range warns a globally (or per-series)
scaled run to forecast relative to the last value; nothing else does."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from tests.tasks.forecast_files import write_rows

from rnnkit import tasks
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.forecast_data import Series, trend_warning

pytestmark = pytest.mark.usefixtures("single_thread")


def split(values, series_id="", at=0.9):
    column = np.asarray(values, dtype=float)[:, None]
    cut = int(len(column) * at)
    return (Series(column[:cut], None, "f.csv", series_id=series_id),
            Series(column[cut:], None, "f.csv", series_id=series_id))


def test_a_rising_series_warns_with_the_setting_to_use():
    head, tail = split(np.arange(200.0))
    text = trend_warning("global", [head], [tail], [0])
    assert text is not None
    assert "100% of the validation values of the series lie above its training range" in text
    assert "data.normalize: last_value" in text


def test_a_falling_panel_series_is_named():
    rng = np.random.default_rng(0)
    flat = split(rng.standard_normal(200), "flat")
    falling = split(-np.arange(200.0) + 0.1 * rng.standard_normal(200), "store7")
    text = trend_warning("series", [flat[0], falling[0]], [flat[1], falling[1]], [0])
    assert "series 'store7' lie below" in text


@pytest.mark.parametrize("normalize", ["global", "series"])
def test_a_stationary_or_seasonal_series_does_not_warn(normalize):
    steps = np.arange(400.0)
    seasonal = np.sin(2 * np.pi * steps / 12) + 0.1 * np.random.default_rng(1).standard_normal(400)
    head, tail = split(seasonal)
    assert trend_warning(normalize, [head], [tail], [0]) is None


def test_a_mild_excursion_does_not_warn():
    # 30% of the validation values above the training maximum: below the threshold.
    training = np.random.default_rng(2).uniform(0, 1, 90)
    values = np.concatenate([training, 0.5 * np.ones(7), 1.5 * np.ones(3)])
    head, tail = split(values)
    assert trend_warning("global", [head], [tail], [0]) is None


def test_last_value_scaling_never_warns():
    head, tail = split(np.arange(200.0))
    assert trend_warning("last_value", [head], [tail], [0]) is None


def train_on(tmp_path, normalize):
    rows = [[t, f"{0.5 * t + np.sin(t):.3f}"] for t in range(240)]
    train = write_rows(tmp_path / "trend.csv", ["time", "value"], rows)
    raw = {"task": "forecasting",
           "data": {"train": str(train), "lookback": 8, "horizon": 4, "normalize": normalize,
                    "time_column": "time"},
           "model": {"cell": "gru", "hidden_size": 8, "gaussian": False},
           "train": {"max_steps": 2, "eval_every": 2, "seed": 0, "progress": False}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tasks.train(config_from_dict(raw), tmp_path / normalize)
    return [str(w.message) for w in caught if "data.normalize" in str(w.message)]


def test_training_a_trending_series_warns_once_and_last_value_does_not(tmp_path):
    [message] = train_on(tmp_path, "global")
    assert re.match(r"data\.normalize: global: 9\d% of the validation values of the series "
                    r"lie above", message)
    assert train_on(tmp_path, "last_value") == []
