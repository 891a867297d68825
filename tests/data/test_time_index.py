"""continue_times: a series' time column continued past its last row, or None."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.data.time_index import continue_times


@pytest.mark.parametrize(("times", "expected"), [
    (["1958-11", "1958-12"], ["1959-01", "1959-02", "1959-03"]),
    (["1960-01", "1960-04"], ["1960-07", "1960-10", "1961-01"]),  # quarterly
    (["2014-12-30", "2014-12-31"], ["2015-01-01", "2015-01-02", "2015-01-03"]),
    (["2024-02-19", "2024-02-26"], ["2024-03-04", "2024-03-11", "2024-03-18"]),  # weekly
    (["1749", "1750"], ["1751", "1752", "1753"]),
    (["0", "5", "10"], ["15", "20", "25"]),
    (["2024-03-31 23:30", "2024-04-01 00:00"],
     ["2024-04-01 00:30", "2024-04-01 01:00", "2024-04-01 01:30"]),
    (["2024-01-01T00:00:00", "2024-01-01T01:00:00"],
     ["2024-01-01T02:00:00", "2024-01-01T03:00:00", "2024-01-01T04:00:00"]),
])
def test_regular_time_columns_continue_in_their_own_format(times, expected):
    assert continue_times(times, 3) == expected


@pytest.mark.parametrize("times", [
    None, [], ["1960-01"],  # nothing to read a step from
    ["1960-01", "1960-02", "1960-04"],  # irregular
    ["2024-01-31", "2024-02-29", "2024-03-31"],  # month ends: not a constant day step
    ["a", "b"], ["3", "3"],  # labels; no step
])
def test_anything_irregular_or_unknown_gives_none(times):
    assert continue_times(times, 2) is None


@given(start=st.integers(1900 * 12, 2100 * 12), step=st.integers(1, 24),
       count=st.integers(2, 30), ahead=st.integers(1, 40))
def test_year_months_continue_as_if_the_series_were_longer(start, step, count, ahead):
    def label(month: int) -> str:
        return f"{month // 12:04d}-{month % 12 + 1:02d}"

    months = [start + step * k for k in range(count + ahead)]
    assert continue_times([label(m) for m in months[:count]], ahead) == [
        label(m) for m in months[count:]]
