"""Many series in one file: long-format CSV and Monash .tsf, with file:line errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import DataFormatError, LongSeriesReader, TsfReader

HEADER = ("# a comment\n@relation demo\n@attribute series_name string\n"
          "@attribute start_timestamp date\n@attribute size numeric\n@frequency monthly\n"
          "@horizon 6\n@missing false\n@equallength false\n@data\n")


def test_long_csv_groups_series_in_time_order(tmp_path):
    path = tmp_path / "panel.csv"
    path.write_text("series_id,time,value,price\na,1,10,1.5\nb,1,20,2\na,2,11,1.5\nb,2,21,2\n")
    panel = LongSeriesReader(path, time_column="time").read_panel()
    assert [s.series_id for s in panel] == ["a", "b"]
    assert panel[0].columns == ("value", "price")
    np.testing.assert_array_equal(panel[1].values, [[20, 2], [21, 2]])
    assert panel[0].times == ("1", "2")


@pytest.mark.parametrize(("body", "message"), [
    ("a,2,10\na,1,11\n", r"panel\.csv:3: series 'a': time '1' is not after '2' \(line 2\)"),
    ("a,1,10\n,2,11\n", r"panel\.csv:3: empty 'series_id' field"),
    ("a,1,ten\n", r"panel\.csv:2: column 'value' holds 'ten'"),
])
def test_long_csv_errors_name_file_and_line(tmp_path, body, message):
    path = tmp_path / "panel.csv"
    path.write_text("series_id,time,value\n" + body)
    with pytest.raises(DataFormatError, match=message):
        LongSeriesReader(path, time_column="time").read_panel()


def test_tsf_reads_series_and_numeric_attributes(tmp_path):
    path = tmp_path / "demo.tsf"
    path.write_text(HEADER + "T1:2000-01-01 00-00-00:3:1,2,3\nT2:2000-01-01 00-00-00:5:4,5\n")
    reader = TsfReader(path)
    panel = reader.read_panel()
    assert [s.series_id for s in panel] == ["T1", "T2"]
    assert panel[0].columns == ("value", "size")
    np.testing.assert_array_equal(panel[1].values, [[4, 5], [5, 5]])
    assert reader.header.horizon == 6 and reader.header.frequency == "monthly"


@pytest.mark.parametrize(("data", "message"), [
    ("T1:2000-01-01 00-00-00:3:1,?,3\n", r"demo\.tsf:11: value 2: expected a finite number, "
                                         r"got '\?' \(missing"),
    ("T1:3:1,2\n", r"demo\.tsf:11: expected 3 attribute\(s\) and the values"),
    ("T1:2000-01-01 00-00-00:big:1\n", r"demo\.tsf:11: attribute 'size': expected a finite"),
])
def test_tsf_errors_name_file_and_line(tmp_path, data, message):
    path = tmp_path / "demo.tsf"
    path.write_text(HEADER + data)
    with pytest.raises(DataFormatError, match=message):
        TsfReader(path).read_panel()


def test_tsf_header_errors(tmp_path):
    path = tmp_path / "bad.tsf"
    path.write_text("@attribute name\n@data\n")
    with pytest.raises(DataFormatError, match=r"bad\.tsf:1: expected '@attribute NAME TYPE'"):
        TsfReader(path).read_panel()
    path.write_text("@relation x\n")
    with pytest.raises(DataFormatError, match=r"bad\.tsf: no @data line"):
        TsfReader(path).read_panel()


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)
panels = st.lists(st.tuples(st.lists(finite, min_size=1, max_size=20), finite),
                  min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(panels)
def test_tsf_round_trips_any_panel(tmp_path_factory, panel):
    lines = [f"S{k}:2000-01-01 00-00-00:{size!r}:" + ",".join(repr(v) for v in values)
             for k, (values, size) in enumerate(panel)]
    path = tmp_path_factory.mktemp("tsf") / "any.tsf"
    path.write_text(HEADER + "\n".join(lines) + "\n")
    read = TsfReader(path).read_panel()
    assert [s.series_id for s in read] == [f"S{k}" for k in range(len(panel))]
    for series, (values, size) in zip(read, panel, strict=True):
        np.testing.assert_array_equal(series.values[:, 0], values)
        assert np.all(series.values[:, 1] == size)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="0123456789,:?x.-e ", max_size=12), min_size=1, max_size=4))
def test_tsf_data_lines_either_parse_or_name_their_line(tmp_path_factory, garbage):
    path = tmp_path_factory.mktemp("tsf") / "junk.tsf"
    path.write_text(HEADER + "\n".join(garbage) + "\n")
    try:
        panel = TsfReader(path).read_panel()
    except DataFormatError as error:
        assert error.line is None or 11 <= error.line <= 10 + len(garbage)
    else:
        assert all(np.isfinite(s.values).all() for s in panel)
