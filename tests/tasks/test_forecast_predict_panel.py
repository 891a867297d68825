"""``predict`` over a panel: models whose forecasts draw no sample paths forecast every series
in one call, and each series gets what it would get alone (its own scaling and recent
calibration factor); models that draw paths still forecast each series alone, so its paths do
not depend on the file's other series."""

from __future__ import annotations

import numpy as np
import pytest
from tests.tasks.forecast_files import recorded_forecast_calls, write_rows

from rnnkit import tasks
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks import forecast_recalibration as recalibration
from rnnkit.tasks import forecasting
from rnnkit.tasks.config import config_from_dict

pytestmark = pytest.mark.usefixtures("single_thread")


def _panel(path, series: int = 5, steps: int = 48):
    """Seasonal series of very different sizes, each with its own phase."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(series):
        scale = 10.0 ** index
        t = np.arange(steps)
        values = scale * (3 + np.sin(2 * np.pi * t / 6 + index) + 0.1 * rng.standard_normal(steps))
        rows += [[f"S{index}", i, f"{v:.6g}"] for i, v in zip(t, values, strict=True)]
    return write_rows(path, ["series_id", "t", "v"], rows)


def _run(tmp_path, model: dict, data: dict) -> tasks.Run:
    """A run trained on the first 48 steps; ``later.csv`` holds 72, so predict's recent
    windows (rolling calibration) lie past the training split."""
    train = _panel(tmp_path / "panel.csv")
    _panel(tmp_path / "later.csv", steps=72)
    raw = {"task": "forecasting",
           "data": {"train": str(train), "time_column": "t", "id_column": "series_id",
                    "lookback": 8, "horizon": 3, "season": 6, **data},
           "model": {"hidden_size": 8, **model},
           "train": {"max_epochs": 2, "lr": 0.01, "progress": False, "seed": 0}}
    tasks.train(config_from_dict(raw), tmp_path / "run")
    return tasks.load_run(tmp_path / "run")


def _alone_and_together(run: tasks.Run, path, monkeypatch, samples: int = 0):
    """The panel's rows from one ``predict``, and from one ``predict`` per series on the
    one-series-at-a-time route (the one that draws paths)."""
    panel = run.task.read(path)
    together = run.task.predict(run.model, [panel], samples=samples)
    with monkeypatch.context() as patch:
        patch.setattr(forecasting.ForecastingTask, "_draws_nothing", lambda self: False)
        alone = [row for series in panel for row in run.task.predict(run.model, [series],
                                                                      samples=samples)]
    return alone, together


@pytest.mark.parametrize(("model", "data"), [
    ({"likelihood": "gaussian"}, {"normalize": "series", "calibration_window": 5}),
    ({"likelihood": "quantile"}, {"normalize": "window", "calibration_window": 5,
                                  "calibration_per_step": True}),
    ({"likelihood": "none"}, {"normalize": "series", "calibration_window": 0}),
    ({"likelihood": "gaussian"}, {"normalize": "last_value", "calibration_window": 0}),
])
def test_one_call_gives_each_series_what_it_gets_alone(tmp_path, monkeypatch, model, data):
    run = _run(tmp_path, model, data)
    monkeypatch.setattr(forecasting, "PREDICT_CHUNK", 2)  # chunks of 2, 2 and 1 series
    alone, together = _alone_and_together(run, tmp_path / "later.csv", monkeypatch)
    assert [(r["series"], r["step"], r["time"]) for r in together] == \
        [(r["series"], r["step"], r["time"]) for r in alone]
    assert len({r["series"] for r in together}) == 5
    # Equal up to float32 rounding of the network's products, which the BLAS may round
    # differently for a different number of rows (MKL does on AMD): 1e-5 of the row's largest
    # value, so a bound near zero (a forecast minus its half-width) is not held to 1e-5 of
    # itself. A wrong scale or factor is off by far more.
    numbers = [key for key in alone[0] if key not in ("series", "step", "time")]
    for key in numbers:
        magnitude = np.array([max(abs(r[name]) for name in numbers) for r in alone])
        difference = np.abs(np.subtract([r[key] for r in together], [r[key] for r in alone]))
        assert np.all(difference <= 1e-5 * magnitude), (key, difference / magnitude)
    if model["likelihood"] != "none":  # the interval is there and around the forecast
        assert all(r["v_lower"] < r["v"] < r["v_upper"] for r in together)


def test_the_panel_is_forecast_in_chunks_not_per_series(tmp_path, monkeypatch):
    run = _run(tmp_path, {"likelihood": "gaussian"}, {"normalize": "series",
                                                      "calibration_window": 0})
    monkeypatch.setattr(forecasting, "PREDICT_CHUNK", 2)
    batches, predict = [], run.model.predict

    def counted(history, *args, **kwargs):
        batches.append(history.shape[0])
        return predict(history, *args, **kwargs)

    monkeypatch.setattr(run.model, "predict", counted)
    run.task.predict(run.model, [run.task.read(tmp_path / "later.csv")])
    assert batches == [2, 2, 1]


def test_sample_paths_of_a_series_do_not_depend_on_the_others(tmp_path, monkeypatch):
    run = _run(tmp_path, {"likelihood": "student_t", "strategy": "autoregressive"},
               {"normalize": "series", "calibration_window": 0, "samples": 50})
    alone, together = _alone_and_together(run, tmp_path / "later.csv", monkeypatch,
                                          samples=20)
    assert together == alone


def _standard_paths(rows: list[dict], series: str) -> np.ndarray:
    """``(steps, paths)``: one series' sample paths, each step centred and scaled."""
    paths = np.array([r["v_samples"] for r in rows if r["series"] == series])
    return (paths - paths.mean(1, keepdims=True)) / paths.std(1, keepdims=True)


@pytest.mark.parametrize("model", [{"likelihood": "gaussian"},
                                   {"likelihood": "student_t", "strategy": "autoregressive"}])
def test_series_do_not_share_their_draws(tmp_path, model):
    # With one seed for every series, path k of each series came from the same standard
    # draws: correlation 1 between series at every step.
    run = _run(tmp_path, model, {"normalize": "series", "calibration_window": 0,
                                 "samples": 50})
    rows = run.task.predict(run.model, [run.task.read(tmp_path / "later.csv")], samples=400)
    first = _standard_paths(rows, "S0")
    for other in ("S1", "S2", "S3", "S4"):
        second = _standard_paths(rows, other)
        correlations = [np.corrcoef(a, b)[0, 1] for a, b in zip(first, second, strict=True)]
        # independent draws: about N(0, 1/20) each; shared ones gave 0.97-1.0
        assert np.abs(correlations).max() < 0.25, (other, correlations)
    again = run.task.predict(run.model, [run.task.read(tmp_path / "later.csv")], samples=400)
    assert again == rows  # seeded: the same paths every time


def test_a_derived_seed_depends_on_the_seed_and_the_key_only():
    seeds = {fp.derived_seed(seed, key) for seed in (0, 1) for key in ("", "a", "b")}
    assert len(seeds) == 6
    assert all(0 <= seed < 2**63 for seed in seeds)
    assert fp.derived_seed(3, "store 7") == fp.derived_seed(3, "store 7")
    # Pinned: a change of the mixing would silently change every saved forecast's paths.
    assert [fp.derived_seed(0, ""), fp.derived_seed(0, "store 7"),
            fp.derived_seed(42, "origin 80")] == [1373089790506818604, 4486436866127638874,
                                                  8229646313471863763]


def test_each_slice_of_recent_windows_draws_its_own_paths(tmp_path, monkeypatch):
    # predict's rolling calibration forecasts the recent windows in slices; with one seed,
    # window k of every slice shared its standard draws with window k of the others
    run = _run(tmp_path, {"likelihood": "student_t", "strategy": "autoregressive"},
               {"normalize": "series", "calibration_window": 5, "samples": 20})
    monkeypatch.setattr(recalibration, "MAX_WINDOWS_PER_CALL", 4)
    seeds = recorded_forecast_calls(monkeypatch)
    run.task.predict(run.model, [run.task.read(tmp_path / "later.csv")])
    slices = [seed for count, seed in seeds if count > 1]
    assert len(slices) >= 3 and len(set(slices)) == len(slices)
