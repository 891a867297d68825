"""``SeriesReader.read_series`` and ``LongSeriesReader.read_panel`` keep long series compactly
(a flat float64 buffer and one string of time labels per series), and the time labels behave as
the tuple they replace."""

from __future__ import annotations

import functools
import tracemalloc

import numpy as np
import pytest

from rnnkit.data import LongSeriesReader, SeriesReader
from rnnkit.data.readers import series as series_module
from rnnkit.data.readers.series import TimeLabels


def test_time_labels_behave_as_a_tuple(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("t,a,b\n2020-01,1,10\n2020-02,2,20\n2020-03,3,30\n2020-04,4,40\n")
    series = SeriesReader(path, time_column="t").read_series()
    labels = ("2020-01", "2020-02", "2020-03", "2020-04")
    assert isinstance(series.times, TimeLabels)
    assert series.times == labels and series.times == list(labels) and labels == series.times
    assert series.times != labels[:3] and series.times != ("x",) * 4
    assert list(series.times) == list(labels) and len(series.times) == 4
    assert series.times[0] == "2020-01" and series.times[-1] == "2020-04"
    assert series.times[1:3] == labels[1:3] and series.times[:-2] == labels[:-2]
    assert series.times[-2:][1] == "2020-04" and series.times[3:1] == ()
    assert not series.times[4:] and series.times[::2] == labels[::2]
    assert series.times[1:][1:][0] == "2020-03"  # a view of a view
    with pytest.raises(IndexError, match="index 4 out of range for 4 labels"):
        series.times[4]
    assert series.values.tolist() == [[1, 10], [2, 20], [3, 30], [4, 40]]
    assert series.values.dtype == np.float64 and series.values.flags.writeable


def test_non_ascii_labels_keep_their_boundaries(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("t,v\nmärz,1\n,2\n字 1,3\n", encoding="utf-8")
    assert SeriesReader(path, time_column="t").read_series().times == ("märz", "", "字 1")


def test_a_long_series_costs_about_its_values_and_labels(tmp_path):
    """Before, every row was a dataclass, a tuple, a float and a string: about 300 bytes a
    row. Now a row of one value and a 5-character label costs 8 + 8 + 5 bytes."""
    rows = 40_000
    path = tmp_path / "s.csv"
    path.write_text("t,value\n" + "".join(f"{t},{t % 97 / 4}\n" for t in range(10_000, 10_000
                                                                               + rows)))
    tracemalloc.start()
    try:
        series = SeriesReader(path, time_column="t").read_series()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert series.values.shape == (rows, 1) and series.times[-1] == str(10_000 + rows - 1)
    assert series.values[5, 0] == 10_005 % 97 / 4
    assert peak < 60 * rows, f"peak {peak / rows:.0f} bytes per row"


def test_progress_counts_the_rows_read_on_request(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(series_module, "tqdm", functools.partial(series_module.tqdm,
                                                                 mininterval=0, miniters=1))
    path = tmp_path / "long.csv"
    path.write_text("t,v\n" + "".join(f"{t},{t}\n" for t in range(40_000)))
    SeriesReader(path, time_column="t").read_series(progress=True)
    shown = capsys.readouterr().err
    assert "reading long.csv: 16.4k rows" in shown and "reading long.csv: 40.0k rows" in shown
    SeriesReader(path, time_column="t").read_series()  # default: only on a terminal
    assert capsys.readouterr().err == ""


def test_a_long_format_panel_is_held_as_compactly(tmp_path):
    rows = 30_000
    path = tmp_path / "long.csv"
    path.write_text("id,t,v\n" + "".join(f"s{i % 3},{10_000 + i // 3},{i / 2}\n"
                                         for i in range(rows)))
    tracemalloc.start()
    try:
        panel = LongSeriesReader(path, "id", time_column="t").read_panel()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(s.series_id, s.values.shape, s.line) for s in panel] == [
        ("s0", (10_000, 1), 2), ("s1", (10_000, 1), 3), ("s2", (10_000, 1), 4)]
    assert panel[1].times[:2] == ("10000", "10001") and panel[1].values[1, 0] == 2.0
    assert peak < 60 * rows, f"peak {peak / rows:.0f} bytes per row"
