"""The report's forecast figure draws what ``predict`` gives for the same window, for every
normalisation (issue 19: with ``last_value`` the per-window level was not added back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit import tasks
from rnnkit.analysis import report_samples
from rnnkit.analysis.html import Section
from rnnkit.analysis.run_context import RunContext
from rnnkit.tasks.forecast_data import Series

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["global", "last_value", "series"])
def air_run(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / request.param
    config = tasks.load_config(ROOT / "examples/air_passengers.yaml", [
        f"data.normalize={request.param}", "model.hidden_size=16", "train.max_steps=20",
        "train.eval_every=20", "train.progress=false"])
    tasks.train(config, out)
    return out


def _drawn(figure) -> dict[str, np.ndarray]:
    """The y values of each labelled line of the forecast figure, and the band's edges."""
    axes = figure.axes[0]
    lines = {line.get_label(): np.asarray(line.get_ydata()) for line in axes.lines}
    band = axes.collections[0].get_paths()[0].vertices[:, 1]  # lower edge, then upper reversed
    horizon = len(lines["forecast"])
    lines["lower"] = band[1:horizon + 1]
    lines["upper"] = band[horizon + 2:2 * horizon + 2][::-1]
    return lines


def test_forecast_figure_matches_predict(air_run, monkeypatch):
    figures = {}
    monkeypatch.setattr(Section, "add_figure",
                        lambda self, name, figure, caption="": figures.setdefault(name, figure))
    context = RunContext(air_run)
    report_samples.samples(context)(Section("Samples"))
    drawn = _drawn(figures["forecast"])
    series = context.examples
    lookback, horizon = 24, 12
    values = series.values[:, 0]
    history, truth = values[-(lookback + horizon):-horizon], values[-horizon:]
    run = tasks.load_run(air_run)
    window = Series(series.values[-(lookback + horizon):-horizon], None, "window")
    predicted = run.predict([window])
    np.testing.assert_allclose(drawn["history"], history)
    np.testing.assert_allclose(drawn["truth"], truth)
    for key, column in (("forecast", "value"), ("lower", "value_lower"),
                        ("upper", "value_upper")):
        np.testing.assert_allclose(drawn[key], [row[column] for row in predicted], rtol=1e-5)
    # The regression: the forecast sits at the series' level (truth 390-620), not near 0.
    assert 0.6 * truth.min() < drawn["forecast"].mean() < 1.4 * truth.max()
