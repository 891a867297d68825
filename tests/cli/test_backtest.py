"""`rnnkit backtest`: origins every --stride steps, per-origin and aggregated metrics printed
and saved in RUN/backtest/, --retrain trains a model per origin, bad options exit 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from tests.tasks.forecast_files import recorded_forecast_calls

from rnnkit import tasks
from rnnkit.analysis import report_samples
from rnnkit.analysis.html import Section
from rnnkit.analysis.report_samples import backtest_baselines, backtest_coverage
from rnnkit.analysis.run_context import RunContext
from rnnkit.tasks.backtest import read_backtest_forecasts, read_backtest_summary
from rnnkit.tasks.config import config_from_dict

pytestmark = pytest.mark.usefixtures("single_thread")


def _series(path, steps):
    t = np.arange(steps)
    noise = 0.1 * np.random.default_rng(0).standard_normal(steps)
    values = 10 + 3 * np.sin(2 * np.pi * t / 8) + noise
    rows = "".join(f"{i},{v:.4f}\n" for i, v in zip(t, values, strict=True))
    path.write_text("time,value\n" + rows)
    return path


@pytest.fixture
def trained(tmp_path):
    data = _series(tmp_path / "series.csv", 120)
    raw = {"task": "forecasting",
           "data": {"train": str(data), "lookback": 16, "horizon": 4, "season": 8,
                    "time_column": "time", "normalize": "global"},
           "model": {"cell": "gru", "hidden_size": 12, "gaussian": True},
           "train": {"lr": 0.01, "batch_size": 32, "max_steps": 150, "eval_every": 150,
                     "seed": 0, "progress": False}}
    tasks.train(config_from_dict(raw), tmp_path / "run")
    return tmp_path / "run", data


def test_backtest_scores_every_origin_and_saves_them(cli, trained):
    run_dir, data = trained
    result = cli("backtest", run_dir, "--data", data, "--stride", "8")
    assert result.exit_code == 0, result.output
    # origins 16, 24, ..., 112 (the last with 4 steps after it in 120 rows): 13
    with (run_dir / "backtest" / "origins.csv").open() as handle:
        origins = list(csv.DictReader(handle))
    assert [int(r["origin"]) for r in origins] == list(range(16, 113, 8))
    summary = json.loads((run_dir / "backtest" / "summary.json").read_text())
    assert summary["settings"]["stride"] == 8 and summary["settings"]["horizon"] == 4
    assert summary["aggregate"]["origins"] == 13
    assert summary["aggregate"]["mase"] == pytest.approx(
        np.mean([float(r["mase"]) for r in origins]))
    assert summary["aggregate"]["mase"] < summary["aggregate"]["naive_mase"]
    aggregate = summary["aggregate"]
    assert {"coverage", "crps", "wql", "theta_mase"} <= aggregate.keys()
    # 13 origins 8 apart forecast 4 steps each: 52 distinct values, none scored twice
    assert aggregate["coverage_low"] <= aggregate["coverage"] <= aggregate["coverage_high"]
    assert 10 <= aggregate["coverage_values"] <= 52
    assert f"95% interval {aggregate['coverage_low']:.3f}-" in result.output
    forecasts = read_backtest_forecasts(run_dir)
    assert len(forecasts) == 13 * 4
    assert float(forecasts[0]["lower"]) <= float(forecasts[0]["mean"]) <= float(
        forecasts[0]["upper"])
    assert "aggregate over origins" in result.output and "mase" in result.output
    assert "ets_mase" in result.output  # statsforecast is in the set-up path
    rows = backtest_baselines(read_backtest_summary(run_dir))
    assert [r["forecast"] for r in rows] == ["model", "seasonal naive", "Theta",
                                             "ETS (statsforecast AutoETS)"]
    assert rows[0]["MASE"] == pytest.approx(summary["aggregate"]["mase"], abs=1e-4)
    assert rows[3]["MASE"] == pytest.approx(summary["aggregate"]["ets_mase"], abs=1e-4)
    assert backtest_baselines(read_backtest_summary(run_dir / "missing")) == []
    sentence = backtest_coverage(summary, 0.9)
    assert sentence.startswith(f"The 90% intervals covered {aggregate['coverage']:.1%}")
    assert f"about {aggregate['coverage_values']:.0f} independent values" in sentence
    assert backtest_coverage(read_backtest_summary(run_dir / "missing"), 0.9) is None


def test_backtest_with_a_shorter_horizon(cli, trained):
    run_dir, data = trained
    result = cli("backtest", run_dir, "--data", data, "--horizon", "2")
    assert result.exit_code == 0, result.output
    forecasts = read_backtest_forecasts(run_dir)
    assert {r["step"] for r in forecasts} == {"1", "2"}
    assert len(forecasts) == 2 * len(range(16, 119, 2))


def test_backtest_retrain_trains_one_model_per_origin(cli, trained):
    run_dir, data = trained
    result = cli("backtest", run_dir, "--data", data, "--stride", "40", "--retrain",
                 "--window", "rolling", "--train-size", "60", "--train-steps", "20")
    assert result.exit_code == 0, result.output
    retrained = sorted(p.name for p in (run_dir / "backtest" / "retrain").iterdir()
                       if p.is_dir())
    assert retrained == ["origin_40", "origin_80"]  # from 2 · (lookback + horizon) on
    history = (run_dir / "backtest" / "retrain" / "history_80.csv").read_text()
    assert len(history.splitlines()) == 1 + 60  # the rolling window before origin 80


def test_each_retrained_origin_draws_its_own_paths(cli, trained, monkeypatch):
    # One seed at every origin would repeat the same standard draws, so an interval's
    # sampling error would not average out over the origins.
    calls = recorded_forecast_calls(monkeypatch)
    run_dir, data = trained
    result = cli("backtest", run_dir, "--data", data, "--stride", "40", "--retrain",
                 "--window", "rolling", "--train-size", "60", "--train-steps", "20")
    assert result.exit_code == 0, result.output
    origin_seeds = [seed for _, seed in calls if seed is not None]
    assert len(origin_seeds) == 2 and len(set(origin_seeds)) == 2


def test_a_stopped_retrain_backtest_resumes_with_the_origins_done(cli, trained):
    run_dir, data = trained
    args = ["backtest", run_dir, "--data", data, "--stride", "40", "--retrain", "--window",
            "rolling", "--train-size", "60", "--train-steps", "20"]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert "origin 1/2 (step 40): trained in" in first.stderr
    assert "origin 2/2 (step 80): trained in" in first.stderr and "0 s left" in first.stderr
    origins = (run_dir / "backtest" / "origins.csv").read_text()
    # Stopped while origin 80 trained: its run never wrote its summary.
    (run_dir / "backtest" / "retrain" / "origin_80" / "summary.json").unlink()
    again = cli(*args)
    assert again.exit_code == 0, again.output
    assert "origin 1/2 (step 40): reusing the model a previous backtest trained" in again.stderr
    assert "origin 2/2 (step 80): trained in" in again.stderr
    assert (run_dir / "backtest" / "origins.csv").read_text() == origins  # seeded: same models
    # Another training length trains every origin again; another history, the origins whose
    # history it changes (origin 40 has fewer than 50 steps before it either way).
    assert cli(*args[:-1], "25").stderr.count("trained in") == 2
    shorter = cli(*args[:-3], "50", "--train-steps", "25").stderr
    assert "origin 1/2 (step 40): reusing" in shorter and "origin 2/2 (step 80): trained" in shorter


def test_backtest_calibration_window_refits_the_factor_per_origin(cli, trained):
    run_dir, data = trained
    result = cli("backtest", run_dir, "--data", data, "--stride", "1",
                 "--calibration-window", "10")
    assert result.exit_code == 0, result.output
    with (run_dir / "backtest" / "origins.csv").open() as handle:
        origins = list(csv.DictReader(handle))
    summary = json.loads((run_dir / "backtest" / "summary.json").read_text())
    assert summary["settings"]["calibration_window"] == 10
    factors = [float(r["factor"]) for r in origins]
    # Origins 16..28 have fewer than 10 forecasts ended before them: the validation factor.
    assert len(set(factors[:13])) == 1 and len(set(factors[13:])) > 1
    assert "factor" in result.output


def test_report_draws_a_stride_1_backtest_as_one_line_per_lead(cli, trained, monkeypatch):
    run_dir, data = trained
    assert cli("backtest", run_dir, "--data", data, "--stride", "1").exit_code == 0
    figures = {}
    monkeypatch.setattr(Section, "add_figure",
                        lambda self, name, figure, caption="": figures.setdefault(name, figure))
    report_samples.samples(RunContext(run_dir))(Section("Samples"))
    lines = {line.get_label(): line for line in figures["backtest"].axes[0].lines}
    assert set(lines) == {"actual", "1 step ahead", "4 steps ahead"}
    forecasts = read_backtest_forecasts(run_dir)
    for lead in (1, 4):
        expected = [float(r["mean"]) for r in forecasts if int(r["step"]) == lead]
        drawn = lines[f"{lead} step{'s' if lead > 1 else ''} ahead"]
        np.testing.assert_allclose(drawn.get_ydata(), expected)
        # origins 16..116, one step apart: the lead-th step of each forecasts value o + lead - 1
        np.testing.assert_array_equal(drawn.get_xdata(), np.arange(16, 117) + lead - 1)
    assert len(figures["backtest"].axes[0].collections) == 2  # an interval band per lead


def test_backtest_calibration_adapt_moves_the_rolling_factor(cli, trained):
    run_dir, data = trained

    def factors(*extra: str) -> list[float]:
        result = cli("backtest", run_dir, "--data", data, "--stride", "1",
                     "--calibration-window", "10", *extra)
        assert result.exit_code == 0, result.output
        with (run_dir / "backtest" / "origins.csv").open() as handle:
            return [float(r["factor"]) for r in csv.DictReader(handle)]

    rolling, adaptive = factors(), factors("--calibration-adapt", "0.2")
    summary = json.loads((run_dir / "backtest" / "summary.json").read_text())
    assert summary["settings"]["calibration_adapt"] == 0.2
    # The validation factor until 10 forecasts have ended, then the level has moved.
    assert adaptive[:13] == rolling[:13] and adaptive[13:] != rolling[13:]


def test_backtest_calibration_seed_starts_the_window_from_validation_forecasts(cli, trained):
    run_dir, data = trained

    def factors(*extra: str) -> tuple[list[int], list[float]]:
        result = cli("backtest", run_dir, "--data", data, "--stride", "1",
                     "--calibration-window", "10", *extra)
        assert result.exit_code == 0, result.output
        with (run_dir / "backtest" / "origins.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        return [int(r["origin"]) for r in rows], [float(r["factor"]) for r in rows]

    _, plain = factors()
    origins, seeded = factors("--calibration-seed")
    summary = json.loads((run_dir / "backtest" / "summary.json").read_text())
    assert summary["settings"]["calibration_seed"] is True
    # The file is the training series itself: validation forecasts (its last 12 rows, the
    # first ending at row 111) count only for origins after they ended.
    assert seeded[:13] == plain[:13]
    differs = [origin for origin, a, b in zip(origins, seeded, plain, strict=True) if a != b]
    assert differs and min(differs) > 111


def test_backtest_calibration_per_step_is_recorded(cli, trained):
    run_dir, data = trained
    result = cli("backtest", run_dir, "--data", data, "--stride", "1",
                 "--calibration-window", "10", "--calibration-per-step")
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "backtest" / "summary.json").read_text())
    assert summary["settings"]["calibration_per_step"] is True
    with (run_dir / "backtest" / "forecasts.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["origin"]) == 40]
    # Each lead's own factor: the widths' ratios to the first step's are not all the same
    # as without per-step factors.
    widths = [float(r["upper"]) - float(r["lower"]) for r in rows]
    plain = cli("backtest", run_dir, "--data", data, "--stride", "1",
                "--calibration-window", "10")
    assert plain.exit_code == 0, plain.output
    with (run_dir / "backtest" / "forecasts.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["origin"]) == 40]
    others = [float(r["upper"]) - float(r["lower"]) for r in rows]
    ratios = np.asarray(widths) / np.asarray(others)
    assert len(widths) == 4 and np.ptp(ratios) > 1e-6


@pytest.mark.parametrize("args, message", [
    (["--calibration-window", "0", "--calibration-adapt", "0.1"],
     "--calibration-adapt: adapts the level"),
    (["--calibration-window", "5", "--calibration-adapt", "2"],
     "--calibration-adapt: expected a step size in (0, 1], got 2.0"),
    (["--retrain", "--calibration-window", "5"], "--calibration-window: rolling"),
    (["--calibration-window", "0", "--calibration-seed"],
     "--calibration-seed: starts the rolling calibration window"),
    (["--calibration-window", "0", "--calibration-per-step"],
     "--calibration-per-step: refits the rolling conformal"),
    (["--horizon", "9"], "--horizon: expected 1..4"),
    (["--window", "sliding"], "--window: expected expanding or rolling"),
    (["--retrain", "--window", "rolling"], "--train-size: needed"),
    (["--retrain", "--window", "rolling", "--train-size", "10"], "--train-size: expected at"),
])
def test_bad_backtest_options_are_one_line_errors(cli, trained, args, message):
    run_dir, data = trained
    result = cli("backtest", run_dir, "--data", data, *args)
    assert result.exit_code == 2 and message in result.output, result.output
