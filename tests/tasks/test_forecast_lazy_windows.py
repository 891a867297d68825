"""Forecast windows are cut lazily from the series (issue 13): the same windows, in the same
order, and the same training batches for a seed as the dense arrays they replace, at a memory
cost of a few integers per window instead of ``lookback + horizon`` rows."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from tests.tasks.forecast_files import write_rows

from rnnkit.data import WindowSource, sliding_windows
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.forecast_data import (
    ColumnRoles,
    Series,
    cut_windows,
    lazy_windows,
    split_windows,
)
from rnnkit.tasks.forecasting import ForecastingTask

LOOKBACK, HORIZON = 5, 3


def _panel(tmp_path):
    """Four series of different lengths (one too short for a window), two value columns, a
    past-only, a future and a static covariate, all with distinct values."""
    rng = np.random.default_rng(7)
    rows = []
    for index, steps in enumerate([40, 23, 6, 31]):
        for t in range(steps):
            rows.append([f"s{index}", t, *np.round(rng.normal(size=4) + index, 4), index - 1.5])
    return write_rows(tmp_path / "panel.csv", ["id", "t", "a", "b", "p", "x", "sign"], rows)


def _config(path, normalize: str):
    return config_from_dict({
        "task": "forecasting",
        "data": {"train": str(path), "id_column": "id", "time_column": "t",
                 "value_columns": ["a", "b"], "target_columns": ["b", "a"],
                 "past_covariates": ["p"], "future_covariates": ["x"],
                 "static_covariates": ["sign"], "lookback": LOOKBACK, "horizon": HORIZON,
                 "normalize": normalize, "valid_fraction": 0.2},
        "model": {"hidden_size": 4}, "train": {"batch_size": 7, "seed": 3}})


def _fitted_task(tmp_path, normalize: str) -> tuple[ForecastingTask, list[Series], list[Series]]:
    path = _panel(tmp_path)
    config = _config(path, normalize)
    task = ForecastingTask.fit(config, path)
    train, valid = task.hold_out(task.read(path))
    task.fit_on_split(train, valid)
    return task, train, valid


def _dense_reference(series: list[Series], roles: ColumnRoles, stride: int):
    """The windows as they were cut before: every series through ``sliding_windows``, then
    concatenated and split by role."""
    parts, owners = [], []
    for index, item in enumerate(series):
        try:
            history, future = sliding_windows(item.values, LOOKBACK, HORIZON, stride=stride,
                                              context=item.context)
        except ValueError:
            continue
        parts.append(np.concatenate([history, future], axis=1))
        owners.append(np.full(len(history), index))
    return split_windows(np.concatenate(parts), LOOKBACK, roles, np.concatenate(owners),
                         tuple(s.series_id for s in series))


@pytest.mark.parametrize("stride", [1, 2, 5])
def test_lazy_windows_equal_the_dense_ones(tmp_path, stride):
    task, train, valid = _fitted_task(tmp_path, "global")
    roles = task.roles
    assert roles.future == 1 and roles.static == 1 and roles.inputs == 3
    assert all(v.context is not None for v in valid)  # validation windows reach into train
    for part in (train, valid):
        expected = _dense_reference(part, roles, stride)
        lazy = lazy_windows(part, roles, LOOKBACK, HORIZON, stride)
        dense = cut_windows(part, roles, LOOKBACK, HORIZON, stride)
        assert len(lazy) == len(expected.history) > 0
        assert sorted(set(expected.series.tolist())) != list(range(len(part)))  # one skipped
        for got in (lazy.dense(), dense):
            for name in ("history", "future", "covariates", "static", "series"):
                np.testing.assert_array_equal(getattr(got, name), getattr(expected, name),
                                              err_msg=name)
            assert got.ids == expected.ids
        rows = [row % len(lazy) for row in (9, 0, -1, 3, 3)]
        picked = lazy.take(rows)
        np.testing.assert_array_equal(picked.history, expected.history[rows])
        np.testing.assert_array_equal(picked.future, expected.future[rows])
        np.testing.assert_array_equal(picked.covariates, expected.covariates[rows])
        np.testing.assert_array_equal(picked.static, expected.static[rows])
        np.testing.assert_array_equal(picked.series, expected.series[rows])


@pytest.mark.parametrize("normalize", ["global", "last_value", "series"])
def test_training_batches_equal_those_of_the_dense_windows(tmp_path, normalize):
    """Same batches, bit for bit, in the same order for a seed (resumed runs depend on it)."""
    task, train, _ = _fitted_task(tmp_path, normalize)
    dense = _dense_reference(train, task.roles, 1)
    history, future, covariates, static = task.model_inputs(dense)
    reference = WindowSource(history, future, task.config.train.batch_size, seed=11,
                             covariates=covariates, static=static)
    source = task.train_source(train, seed=11)
    assert len(source) == len(reference) > 3
    for epoch in (0, 1):
        pairs = list(zip(source.iter_epoch(epoch), reference.iter_epoch(epoch), strict=True))
        for got, expected in pairs:
            for name in ("history", "future", "covariates", "static"):
                assert getattr(got, name).equal(getattr(expected, name)), name
    resumed = next(source.iter_epoch(1, start=2))
    assert resumed.history.equal(list(reference.iter_epoch(1))[2].history)


def test_a_long_series_costs_a_few_integers_per_window():
    """Dense windows of lookback 24 + horizon 12 cost 36 x 8 bytes per window and copy; the
    lazy ones keep the series as it is plus a start and an owner per window."""
    roles = ColumnRoles(("value",), 1, 0, 0, (0,))
    costs = []
    for steps in (20_000, 80_000):
        series = Series(np.arange(steps, dtype=np.float64)[:, None], None, "long.csv")
        tracemalloc.start()
        try:
            windows = lazy_windows([series], roles, 24, 12)
            batch = windows.take(np.arange(0, steps - 35, 997))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert windows.values is series.values  # not copied
        assert batch.history[1, 0, 0] == 997 and batch.future[1, -1, 0] == 997 + 35
        costs.append(peak / len(windows))
    assert max(costs) < 24, f"bytes per window: {costs}"
    assert abs(costs[1] - costs[0]) < 2  # per window, not growing with the series
