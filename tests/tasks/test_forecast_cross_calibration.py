"""Cross-conformal calibration (``data.calibration: cross``): the held-out blocks and their gaps
are as documented in :mod:`rnnkit.tasks.forecast_cross`, the factor is the conformal quantile of
the pooled scores, and it sees noise in the training period that the validation split lacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.tasks.forecast_files import recorded_forecast_calls, signed_panel, write_rows

from rnnkit import tasks
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.backtest import BacktestSettings, run_backtest
from rnnkit.tasks.config import config_from_dict
from rnnkit.tasks.errors import ConfigError
from rnnkit.tasks.forecast_cross import check_folds, fold_blocks, fold_split
from rnnkit.tasks.forecast_data import ColumnRoles, Series, cut_windows

pytestmark = pytest.mark.usefixtures("single_thread")

ROLES = ColumnRoles(("value",), 1, 0, 0, (0,))


def _indexed(length: int, series_id: str = "", end: int = 100) -> Series:
    """A series whose value at each step is its time (steps ``end - length .. end - 1``)."""
    steps = np.arange(end - length, end, dtype=float)
    return Series(steps[:, None], tuple(str(int(s)) for s in steps), "x.csv", series_id=series_id)


def _window_steps(series: list[Series], lookback: int, horizon: int) -> list[set]:
    """The time steps (values) each window of ``series`` holds, history and future."""
    windows = cut_windows(series, ROLES, lookback, horizon)
    return [set(h[:, 0]) | set(f[:, 0]) for h, f in zip(windows.history, windows.future,
                                                        strict=True)]


@pytest.mark.parametrize(("length", "lookback", "horizon", "folds"),
                         [(40, 5, 3, 3), (61, 4, 2, 4), (30, 6, 1, 2)])
def test_no_held_out_value_is_in_a_training_window_and_the_gap_is_lookback_plus_horizon(
        length, lookback, horizon, folds):
    series = [_indexed(length)]
    span = lookback + horizon
    first = 100 - length  # the step of value 0
    every_start = set(range(length - span + 1))
    held_starts = []
    for block in fold_blocks([length], lookback, horizon, folds):
        (start, stop), = block
        training, held_out = fold_split(series, block, lookback, horizon)
        held_values = set(held_out[0].values[:, 0])
        assert held_values == set(range(first + start, first + stop))
        starts = range(start, stop - span + 1)  # the windows scored: all inside the block
        assert len(cut_windows(held_out, ROLES, lookback, horizon).future) == len(starts)
        train_windows = _window_steps(training, lookback, horizon)
        assert all(not (steps & held_values) for steps in train_windows)
        # Every window that shares no value with the block trains the fold's model, and the
        # training window starts keep lookback + horizon away from the held-out ones.
        train_starts = {int(min(steps)) - first for steps in train_windows}
        assert train_starts == {s for s in every_start if s + span <= start or s >= stop}
        assert min(abs(s - h) for s in train_starts for h in starts) >= span
        held_starts += list(starts)
    # The blocks partition the windows, in order, in near-equal sizes.
    assert held_starts == sorted(every_start)
    sizes = [stop - start - span + 1 for ((start, stop),) in
             fold_blocks([length], lookback, horizon, folds)]
    assert max(sizes) - min(sizes) <= 1


def test_panel_blocks_hold_out_the_same_steps_of_every_series():
    long, short = _indexed(60, "a"), _indexed(40, "b")  # both end at step 99
    lookback, horizon = 4, 2
    blocks = fold_blocks([60, 40], lookback, horizon, 3)
    for block in blocks:
        training, held_out = fold_split([long, short], block, lookback, horizon)
        spans = {s.series_id: set(s.values[:, 0]) for s in held_out}
        if "b" in spans:
            assert spans["b"] == {step for step in spans["a"] if step >= 60}
        held = set().union(*spans.values())
        # No series of the fold's training data has a window in the held-out steps.
        assert all(not (steps & held) for steps in _window_steps(training, lookback, horizon))
    # 55 windows of the long series, block edges round(k · 55 / 3) = 0, 18, 37, 55: fold 1
    # holds out windows 0-17, steps 40-62; the short series (from step 60) has no window in
    # it, and its first 3 steps are no training data either.
    assert blocks[0] == [(0, 23), (0, 3)]
    training, held_out = fold_split([long, short], blocks[0], lookback, horizon)
    assert [s.series_id for s in held_out] == ["a"]
    assert min(min(s.values[:, 0]) for s in training if s.series_id == "b") == 63


def test_pooled_factor_is_the_conformal_quantile_of_validation_and_fold_scores():
    validation = np.array([0.5, 1.0, 1.5])
    folds = np.array([2.0, 0.2, 0.7, 3.0, 1.2, 0.9, 0.1])
    # n = 10 pooled, rank ceil(11 · 0.8) = 9 of 0.1 0.2 0.5 0.7 0.9 1.0 1.2 1.5 2.0 3.0
    assert fp.conformal_quantile(np.concatenate([validation, folds]), 0.8) == 2.0
    # validation alone: rank ceil(4 · 0.8) = 4 > 3, its largest score
    assert fp.conformal_quantile(validation, 0.8) == 1.5


def _noisy_files(tmp_path):
    """A sine with noise 1.0 in every third 30-step stretch and 0.1 elsewhere, except over the
    validation split (steps 300-359), which is all quiet: validation errors are smaller than
    the test period's (steps 360-449, a third of them loud)."""
    rng = np.random.default_rng(0)
    steps = np.arange(450)
    loud = (steps // 30) % 3 == 0
    loud[300:360] = False
    values = 2 * np.sin(2 * np.pi * steps / 12) + np.where(loud, 1.0, 0.1) * \
        rng.standard_normal(len(steps))
    rows = [[t, f"{v:.5f}"] for t, v in zip(steps, values, strict=True)]
    return [write_rows(tmp_path / f"{name}.csv", ["time", "value"], rows[start:stop])
            for name, start, stop in (("train", 0, 300), ("valid", 300, 360),
                                      ("test", 360, 450))]


def _config(train, valid, *overrides: str):
    return tasks.load_config(None, [
        "task=forecasting", f"data.train={train}", f"data.valid={valid}", "data.format=series",
        "data.time_column=time", "data.lookback=12", "data.horizon=3", "data.season=12",
        "data.normalize=global", "model.hidden_size=16", "model.likelihood=gaussian",
        "model.gaussian=null", "train.max_epochs=10", "train.batch_size=32", "train.lr=0.01",
        "train.progress=false", "train.seed=0", *overrides])


def test_cross_sees_training_noise_the_validation_split_lacks(tmp_path):
    train, valid, test = _noisy_files(tmp_path)
    config = _config(train, valid, "data.calibration=cross", "data.calibration_folds=4")
    tasks.train(config, tmp_path / "run")
    run = tasks.load_run(tmp_path / "run")
    record = run.task.artifacts["cross_calibration"]
    # Every window of the 60 + 12 validation steps, and every held-out window of the folds:
    # 300 - 15 + 1 = 286 training windows, each scored once, 3 steps each.
    assert record["validation_scores"] == (72 - 15 + 1) * 3
    assert record["fold_scores"] == 286 * 3
    cross = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=0))
    run.task.artifacts["conformal_factor"] = record["validation_factor"]
    validation_only = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=0))
    assert record["validation_factor"] < 0.5 < record["fold_factor"]
    assert validation_only.aggregate["coverage"] < 0.75
    assert 0.85 <= cross.aggregate["coverage"] <= 0.95


def test_split_conformal_runs_record_no_cross_calibration(tmp_path):
    train, valid, _ = _noisy_files(tmp_path)
    tasks.train(_config(train, valid, "train.max_epochs=1"), tmp_path / "run")
    artifacts = tasks.load_run(tmp_path / "run").task.artifacts
    assert "cross_calibration" not in artifacts and "conformal_factor" in artifacts


@pytest.mark.parametrize(("strategy", "likelihood"), [("autoregressive", "quantile"),
                                                      ("direct", "student_t")])
def test_a_panel_scores_every_training_window_once_in_either_strategy(tmp_path, monkeypatch,
                                                                      strategy, likelihood):
    calls = recorded_forecast_calls(monkeypatch)
    train, test = signed_panel(tmp_path, series=4, steps=80)
    raw = {"task": "forecasting",
           "data": {"train": str(train), "lookback": 4, "horizon": 3, "normalize": "global",
                    "time_column": "time", "future_covariates": ["x"],
                    "static_covariates": ["sign"], "calibration": "cross",
                    "calibration_folds": 3, "samples": 50},
           "model": {"cell": "gru", "hidden_size": 8, "strategy": strategy,
                     "likelihood": likelihood, "gaussian": None},
           "train": {"lr": 0.01, "batch_size": 32, "max_steps": 40, "eval_every": 20,
                     "seed": 0, "progress": False}}
    notes = []
    tasks.train(config_from_dict(raw), tmp_path / "run", notice=notes.append)
    # The K extra trainings announce themselves, each fold when it starts and when it ends.
    folds = [note for note in notes if note.startswith("cross-conformal calibration")]
    assert [note.split(":")[1].split(" of ")[0] for note in folds] == [
        " training fold model 1", " fold 1", " training fold model 2", " fold 2",
        " training fold model 3", " fold 3"]
    assert all(" of 3 " in note for note in folds)
    # 48 windows per series, 16 per fold, in each of the 4 series.
    assert all("scored 64 held-out windows" in note for note in folds[1::2])
    # each fold's paths its own draws (one seed for all: window k of every fold shared them)
    fold_seeds = [seed for _, seed in calls if seed is not None]
    assert len(fold_seeds) == 3 and len(set(fold_seeds)) == 3
    run = tasks.load_run(tmp_path / "run")
    record = run.task.artifacts["cross_calibration"]
    # 60 training steps per series, the last 6 held out for validation: 54 - 7 + 1 = 48
    # windows per series, each held out by exactly one of the 3 folds.
    assert record["fold_scores"] == 4 * 48 * 3
    assert record["validation_scores"] == 4 * (6 + 4 - 7 + 1) * 3
    # Forecasts apply the pooled factor, not the validation one.
    factor = run.task.artifacts["conformal_factor"]
    assert factor != record["validation_factor"]
    windows = run.task.windows(run.task.read(test))
    calibrated = run.task.forecast(run.model, windows)
    raw = run.task.forecast(run.model, windows, calibrated=False)
    torch.testing.assert_close(calibrated.upper - calibrated.median,
                               factor * (raw.upper - raw.median))


@pytest.mark.parametrize("folds", [1, 0, -2, True, 2.5, "four"])
def test_bad_fold_counts_are_refused_by_name(folds):
    with pytest.raises(ConfigError, match=r"data\.calibration_folds: expected an integer >= 2"):
        check_folds(folds)


def test_bad_values_in_the_config_are_refused_by_name(tmp_path):
    train, valid, _ = _noisy_files(tmp_path)
    with pytest.raises(ValueError, match=r"data\.calibration"):
        _config(train, valid, "data.calibration=crossed")
    with pytest.raises(ValueError, match=r"data\.calibration_folds"):
        _config(train, valid, "data.calibration_folds=many")
    for calibration in ("cross", "conformal"):
        config = _config(train, valid, f"data.calibration={calibration}",
                         "data.calibration_folds=1")
        with pytest.raises(ConfigError, match=r"data\.calibration_folds: expected an integer "
                                              r">= 2 .*got 1"):
            tasks.train(config, tmp_path / "run")
    config = _config(train, valid, "data.calibration=cross", "data.calibration_folds=300")
    with pytest.raises(ConfigError, match=r"data\.calibration_folds: 300 blocks need at least "
                                          r"300 training windows per series, the longest "
                                          r"training series has 286"):
        tasks.train(config, tmp_path / "run2")
