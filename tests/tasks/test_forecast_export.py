"""An exported forecasting graph takes raw history and gives what the run forecasts, under
every ``data.normalize``: the per-window scaling is built into the graph (``series``: the
rows' series statistics are two more inputs)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from tests.tasks.forecast_files import write_rows

from rnnkit import tasks
from rnnkit.models.export import export_model
from rnnkit.models.export_graphs import WindowScaling
from rnnkit.tasks.config import config_from_dict

pytestmark = pytest.mark.usefixtures("single_thread")


def panel_file(tmp_path):
    """Two series of different sizes, each a trend plus a season plus noise."""
    rng = np.random.default_rng(0)
    rows = []
    for series_id, size in (("small", 1.0), ("large", 40.0)):
        for t in range(160):
            value = size * (3 + 0.02 * t + np.sin(2 * np.pi * t / 8) + 0.1 * rng.standard_normal())
            rows.append([series_id, t, f"{value:.4f}"])
    return write_rows(tmp_path / "panel.csv", ["series_id", "time", "value"], rows)


@pytest.mark.parametrize("likelihood", ["gaussian", "quantile"])
@pytest.mark.parametrize(("normalize", "residual"), [
    ("global", None), ("last_value", None), ("window", None), ("series", None),
    ("global", "seasonal_naive"), ("series", "seasonal_naive")])
def test_the_graph_forecasts_raw_history_as_the_run_does(tmp_path, normalize, likelihood,
                                                         residual):
    raw = {"task": "forecasting",
           "data": {"train": str(panel_file(tmp_path)), "lookback": 16, "horizon": 4,
                    "season": 8, "normalize": normalize, "time_column": "time",
                    "calibration": "none"},
           "model": {"cell": "gru", "hidden_size": 8, "likelihood": likelihood,
                     "residual": residual},
           "train": {"max_steps": 30, "eval_every": 30, "seed": 0, "progress": False}}
    tasks.train(config_from_dict(raw), tmp_path / "run")
    run = tasks.load_run(tmp_path / "run")
    assert run.model.config.residual == (residual or "none")  # the graph adds the baseline
    options = run.task.export_options()
    assert options["scaling"].mode == normalize
    export_model(run.model, tmp_path / "m.onnx", **options)
    windows = run.task.windows(run.task.read(tmp_path / "panel.csv"))
    feeds = {"history": windows.history.astype(np.float32)}
    if normalize == "series":
        stats = [run.task.artifacts["series_scale"][windows.ids[i]] for i in windows.series]
        feeds["series_mean"] = np.array([mean for mean, _ in stats], dtype=np.float32)
        feeds["series_std"] = np.array([std for _, std in stats], dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    assert [i.name for i in session.get_inputs()] == list(feeds)
    got = session.run(None, feeds)
    want = run.task.forecast(run.model, windows, calibrated=False)
    large = windows.history[:, -1, 0] > 20  # the large series: values in the 100s
    assert abs(want.mean.numpy()[large]).min() > 50  # original units, not scaled ones
    np.testing.assert_allclose(got[0], want.mean.numpy(), rtol=1e-4, atol=1e-3)
    if likelihood == "gaussian":
        np.testing.assert_allclose(got[1], want.std.numpy(), rtol=1e-4, atol=1e-3)
    else:
        lower = run.model.config.quantiles.index(0.05)
        np.testing.assert_allclose(got[1][..., lower], want.lower.numpy(), rtol=1e-4, atol=1e-3)
    if normalize == "global":  # the graph takes a longer lookback than the run's windows
        history = np.concatenate([windows.history[:, :5], windows.history], axis=1)
        longer = session.run(None, {"history": history.astype(np.float32)})[0]
        np.testing.assert_allclose(longer, run.model.predict(history).mean.numpy(),
                                   rtol=1e-4, atol=1e-3)


def test_window_scaling_is_checked():
    with pytest.raises(ValueError, match=r"scaling\.mode: expected"):
        WindowScaling("mean")
    with pytest.raises(ValueError, match=r"scaling\.floor: expected the per-feature smallest"):
        WindowScaling("window")
    with pytest.raises(ValueError, match=r"scaling\.floor"):
        WindowScaling("global", (1.0,))
