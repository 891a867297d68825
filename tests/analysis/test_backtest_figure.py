"""What the report's backtest figure draws: each origin's path when origins are a horizon or
more apart, else one line per lead time (a stride-1 backtest overlaps up to a horizon of
paths over every value)."""

from __future__ import annotations

from rnnkit.analysis.report_samples import backtest_traces


def _rows(origins, horizon: int, interval: bool = True) -> list[dict[str, str]]:
    """Rows as read from forecasts.csv; each mean is 100 · origin + step, so a drawn value
    tells which forecast it came from."""
    rows = []
    for origin in origins:
        for step in range(1, horizon + 1):
            mean = 100 * origin + step
            row = {"series": "", "origin": str(origin), "step": str(step), "actual": "0",
                   "mean": str(mean)}
            if interval:
                row.update(lower=str(mean - 1), upper=str(mean + 1))
            rows.append(row)
    return rows


def test_overlapping_origins_draw_the_first_and_last_lead_as_lines():
    traces = backtest_traces(_rows(range(10, 20), 3))
    assert [t["label"] for t in traces] == ["1 step ahead", "3 steps ahead"]
    first, last = traces
    assert first["x"] == list(range(10, 20))  # origin o's first step forecasts value o
    assert first["mean"] == [100 * o + 1 for o in range(10, 20)]
    assert last["x"] == [o + 2 for o in range(10, 20)]
    assert last["mean"] == [100 * o + 3 for o in range(10, 20)]
    assert last["lower"] == [m - 1 for m in last["mean"]]
    assert last["upper"] == [m + 1 for m in last["mean"]]


def test_origins_a_horizon_apart_draw_each_path():
    traces = backtest_traces(list(reversed(_rows([0, 3, 6], 3))))  # any row order
    assert [t["label"] for t in traces] == ["forecast", None, None]
    assert traces[1]["x"] == [3, 4, 5]
    assert traces[1]["mean"] == [301, 302, 303]


def test_one_step_forecasts_are_one_line_and_point_forecasts_have_no_band():
    traces = backtest_traces(_rows(range(0, 10, 2), 1, interval=False))
    assert len(traces) == 1 and traces[0]["label"] == "1 step ahead"
    assert traces[0]["x"] == [0, 2, 4, 6, 8]
    assert traces[0]["lower"] is None and traces[0]["upper"] is None
