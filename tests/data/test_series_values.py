"""Series CSVs with missing, non-finite or non-numeric values, skip mode without joined gaps,
located quote errors, and a skip notice shown once."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from rnnkit.data import DataFormatError, SeriesReader


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(("cell", "reason"), [
    ("", "column 'value' is empty (a missing value)"),
    ("nan", "column 'value' holds 'nan', which is not finite"),
    ("-Infinity", "column 'value' holds '-Infinity', which is not finite"),
    ("inf", "column 'value' holds 'inf', which is not finite"),
    ("1,5", None),  # an extra field: the record has the wrong width
    ("twelve", "column 'value' holds 'twelve', which is not a number"),
])
def test_each_bad_value_is_an_error_naming_file_line_and_column(tmp_path, cell, reason):
    path = write(tmp_path, f"t,value\n1,1\n2,{cell}\n3,3\n")
    with pytest.raises(DataFormatError) as caught:
        SeriesReader(path, time_column="t").read_series()
    assert (caught.value.path, caught.value.line) == (path, 3)
    if reason is not None:
        assert caught.value.reason.startswith(reason)
        assert "expected a finite number" in caught.value.reason
    else:
        assert caught.value.reason == "expected 2 fields (','-separated), got 3"


def test_skip_drops_bad_rows_at_the_start_and_end_only(tmp_path):
    path = write(tmp_path, "t,value\n0,n/a\n1,1\n2,2\n3,3\n4,\n5,?\n")
    reader = SeriesReader(path, time_column="t", on_error="skip")
    series = reader.read_series()
    assert series.values[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert series.times == ("1", "2", "3") and reader.skipped == 3
    assert np.isfinite(series.values).all()


def test_skip_refuses_to_join_time_steps_around_a_dropped_row(tmp_path):
    path = write(tmp_path, "t,value\n1,1\n2,2\n3,nan\n4,4\n")
    with pytest.raises(DataFormatError) as caught:
        SeriesReader(path, time_column="t", on_error="skip").read_series()
    assert caught.value.line == 5
    assert "dropped 1 row(s) inside the series before this line (first: line 4: column " \
           "'value' holds 'nan'" in caught.value.reason
    assert "non-adjacent time steps" in caught.value.reason


def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path):
    rows = "".join(f"{t},{t * 2}\n" for t in range(1, 300))
    lines = ["t,value", *rows.splitlines()]
    lines[49] = '49,"98'  # line 50 of the file opens a quote that nothing closes
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as caught:
        SeriesReader(path, time_column="t").read_series()
    assert caught.value.line == 50
    assert re.search(r"runs from this line to line 300\b.*quote", caught.value.reason)


def test_a_quote_closed_lines_later_is_reported_at_its_start(tmp_path):
    path = write(tmp_path, 't,value\n1,1\n2,"2\n3,3\n4",4\n5,5\n')
    with pytest.raises(DataFormatError) as caught:
        SeriesReader(path, time_column="t").read_series()
    assert caught.value.line == 3 and "to line 5" in caught.value.reason


def test_the_skip_notice_is_shown_once_per_file(tmp_path, caplog):
    path = write(tmp_path, "t,value\n1,x\n2,2\n3,3\n")
    caplog.set_level(logging.WARNING, logger="rnnkit.data")
    for _ in range(3):  # a task reads its training file more than once
        SeriesReader(path, time_column="t", on_error="skip").read_series()
    notices = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert notices == [f"{path}: skipped 1 malformed record(s); first: {path}:2: column "
                       "'value' holds 'x', which is not a number; expected a finite number "
                       "(fill or interpolate missing values; data.on_error: skip drops such "
                       "rows only at the start or end of a series)"]
