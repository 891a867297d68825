"""Interval coverage on public series that played no part in choosing the calibration method.

``bench/forecast_coverage.py`` measured every calibration method on the four datasets the
forecasting work was built on; the one that kept all of them inside 85-95% (a cross-conformal
factor, ``data.calibration: cross``, refitted by a rolling window of the last 14 ended
forecasts, ``rnnkit backtest --calibration-window 14``) was picked there, after seeing those
tables. This script checks that choice out of sample: three series from the statsmodels
package's datasets, none used before, with configs written down before the first run (below,
in the style of the examples: lookback a few seasons, horizon one season or a year, a 64-unit
GRU, the examples' training settings) and never changed after it.

- ``co2``: weekly CO2 at Mauna Loa 1958-2001 (2,284 weeks; the 59 missing weeks filled by
  linear interpolation), lookback 104, horizon 13, season 52, last 156 weeks held out.
- ``elnino``: monthly sea-surface temperature of the El Nino region 1950-2010 (732 months),
  lookback 36, horizon 12, season 12, last 120 months held out.
- ``us_rates``: four quarterly US series 1959-2009 from ``macrodata`` (unemployment,
  treasury-bill rate, inflation, real interest rate; 203 quarters each) as one long-format
  panel, each series scaled by its own statistics; lookback 16, horizon 4, season 4, last 32
  quarters of each held out.

The series are read from the statsmodels wheel on this machine's package mirror (a zip file,
nothing installed; statsmodels 0.15.0, sha256 b67886b6...65da, BSD-3; the data are US
government / NOAA public records, see each dataset's ``data.py`` in the wheel) and written,
with the configs, to a scratch directory. Results go to ``bench/results/forecast_fresh.md``::

    .venv/bin/python bench/forecast_fresh.py --wheel /opt/pypi/files/statsmodels-0.15.0-*.whl
"""

from __future__ import annotations

import argparse
import csv
import datetime
import glob
import io
import multiprocessing
import tempfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import forecast_coverage
import numpy as np
import torch

from rnnkit.tasks.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "statsmodels/datasets/"
TRAINING = {"batch_size": 64, "lr": 0.002, "max_epochs": 30, "patience": 5, "seed": 0}
MODEL = {"cell": "gru", "hidden_size": 64, "gaussian": "true"}


def _read(wheel: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    with wheel.open(PREFIX + name) as raw:
        return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))


def _interpolated(values: list[float | None]) -> list[float]:
    """Missing entries filled linearly between their known neighbours."""
    known = np.array([i for i, v in enumerate(values) if v is not None])
    filled = np.interp(np.arange(len(values)), known, [values[i] for i in known])
    return [float(v) for v in filled]


def co2_series(wheel: zipfile.ZipFile) -> list[tuple[str, str, float]]:
    rows = _read(wheel, "co2/co2.csv")
    values = _interpolated([float(r["co2"]) if r["co2"] else None for r in rows])
    times = [datetime.datetime.strptime(r["date"], "%Y%m%d").date().isoformat() for r in rows]
    return [("co2", t, v) for t, v in zip(times, values, strict=True)]


def elnino_series(wheel: zipfile.ZipFile) -> list[tuple[str, str, float]]:
    months = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
              "DEC")
    return [("elnino", f"{int(float(r['YEAR']))}-{m + 1:02d}", float(r[name]))
            for r in _read(wheel, "elnino/elnino.csv") for m, name in enumerate(months)]


def rates_series(wheel: zipfile.ZipFile) -> list[tuple[str, str, float]]:
    rows = _read(wheel, "macrodata/macrodata.csv")
    return [(column, f"{int(float(r['year']))}Q{int(float(r['quarter']))}", float(r[column]))
            for column in ("unemp", "tbilrate", "infl", "realint") for r in rows]


# name -> (reader, lookback, horizon, season, held-out steps per series, normalize)
DATASETS = {
    "co2": (co2_series, 104, 13, 52, 156, "global"),
    "elnino": (elnino_series, 36, 12, 12, 120, "global"),
    "us_rates": (rates_series, 16, 4, 4, 32, "series"),
}


def write_dataset(name: str, spec: tuple, rows: list[tuple[str, str, float]], out: Path,
                  sections: dict[str, dict] | None = None) -> Path:
    """Train/test CSVs (long format) and the config of dataset ``name`` with ``spec`` (a value
    of :data:`DATASETS`; ``normalize`` ``None`` leaves the task's default) and the ``model``
    and ``train`` ``sections`` (default :data:`MODEL` and :data:`TRAINING`; an empty one
    leaves the task's defaults); returns the config's path."""
    sections = sections or {"model": MODEL, "train": TRAINING}
    _, lookback, horizon, season, held_out, normalize = spec
    by_series: dict[str, list[tuple[str, str, float]]] = {}
    for row in rows:
        by_series.setdefault(row[0], []).append(row)
    files = {}
    for split in ("train", "test"):
        files[split] = out / f"{name}_{split}.csv"
        with files[split].open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["series_id", "time", "value"])
            for series in by_series.values():
                part = series[:-held_out] if split == "train" else series[-held_out:]
                writer.writerows(part)
    tail = "".join(f"{section}:\n" + "".join(f"  {key}: {value}\n" for key, value in
                                            values.items())
                   for section, values in sections.items() if values)
    config = out / f"{name}.yaml"
    config.write_text(
        "task: forecasting\ndata:\n"
        f"  train: {files['train']}\n  test: {files['test']}\n  time_column: time\n"
        f"  value_columns: [value]\n  lookback: {lookback}\n  horizon: {horizon}\n"
        f"  season: {season}\n" + (f"  normalize: {normalize}\n" if normalize else "")
        + tail, encoding="utf-8")
    return config


def arguments(doc: str, datasets: dict, wheel: str, out: Path) -> argparse.Namespace:
    """The command line shared by the registered checks (``datasets`` as in
    :data:`DATASETS`, read from the wheel ``wheel``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--wheel", default=wheel, help="the wheel holding the data (a glob)")
    parser.add_argument("--datasets", nargs="+", default=list(datasets))
    parser.add_argument("--likelihoods", nargs="+", default=["gaussian", "student_t",
                                                             "quantile"])
    parser.add_argument("--max-time", type=float, default=2.0, help="minutes per training")
    parser.add_argument("--window", type=int, default=14)
    parser.add_argument("--cross", type=int, default=4)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides: a post-hoc variant, named so in the report")
    parser.add_argument("--jobs", type=int, default=1,
                        help="trainings at once, one thread each (each is seeded, so the rows "
                        "are the same; training stops on epochs or patience, not the clock)")
    parser.add_argument("--out", type=Path, default=out)
    return parser.parse_args()


def run_check(args: argparse.Namespace, datasets: dict,
              sections: dict[str, dict] | None = None) -> list[dict]:
    """Train, calibrate and backtest every dataset x likelihood of ``args``; one row each
    (``sections``: see :func:`write_dataset`)."""
    torch.set_num_threads(1)
    [wheel_path] = glob.glob(args.wheel)
    with zipfile.ZipFile(wheel_path) as wheel, tempfile.TemporaryDirectory() as scratch, \
            ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        jobs = []
        for name in args.datasets:
            spec = datasets[name]
            config = write_dataset(name, spec, spec[0](wheel), Path(scratch), sections)
            jobs += [(name, likelihood, pool.submit(
                forecast_coverage.measure, str(config), likelihood, args.max_time, 0,
                Path(scratch), tuple(args.set), window=args.window, cross=args.cross))
                for likelihood in args.likelihoods]
        rows = []
        for name, likelihood, job in jobs:  # in the registered order, whichever ends first
            try:
                rows.append(job.result())
            except ConfigError as error:  # the method cannot run here: a row that says why
                rows.append({"dataset": name, "likelihood": likelihood, "error": str(error)})
            print(_line(rows[-1]), flush=True)
    return rows


def main() -> None:
    args = arguments(__doc__, DATASETS, "/opt/pypi/files/statsmodels-0.15.0-*.whl",
                     ROOT / "bench" / "results" / "forecast_fresh.md")
    rows = run_check(args, DATASETS)
    args.out.write_text(report(rows, args, __doc__, "bench/forecast_fresh.py"),
                        encoding="utf-8")


def _line(r: dict) -> str:
    mark = forecast_coverage._mark
    if "error" in r:
        return f"| {r['dataset']} | {r['likelihood']} | not run: {r['error']} |" + " |" * 10
    return (f"| {r['dataset']} | {r['likelihood']} | {r['series']} x {r['origins']} "
            f"| {r['values']} ({r['distinct']}) | {mark(r['conformal'])} "
            f"| {_optional(r, 'cross')} | {_optional(r, 'cross_rolling')} "
            f"| {mark(r['rolling_unseeded'])} "
            f"| {mark(r['raw'])} | {r['mase']:.3f} | {r['naive_mase']:.3f} "
            f"| {r['theta_mase']:.3f} | {r['stop']} ({r['epochs']}) |")


def _optional(r: dict, key: str) -> str:
    """A coverage the run measured, or a dash (cross-conformal columns without ``--cross``)."""
    return forecast_coverage._mark(r[key]) if key in r else "-"


def _relative(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def report(rows: list[dict], args, doc: str, script: str) -> str:
    """The markdown page: ``doc``'s second paragraph on (up to "The series are read"), the
    settings, the count inside 85-95% and the table."""
    inside = sum(0.85 <= r.get("cross_rolling", -1) <= 0.95 for r in rows)
    scored = [r for r in rows if "error" not in r]
    noise = "; ".join(f"{r['dataset']}: ±{1.96 * np.sqrt(0.09 / r['distinct']):.3f}"
                      for r in {r["dataset"]: r for r in scored}.values())
    return (
        "# Interval coverage on fresh data (nominal 90%)\n\n"
        + doc.split("\n\n", 1)[1].split("The series are read")[0]
        + "Settings as fixed before the run: one seed, 1 thread, "
        f"`train.max_time={args.max_time}` minutes, cross-conformal with {args.cross} folds, "
        f"rolling window {args.window}"
        + (f"; **post hoc, not fixed before the run: {' '.join(args.set)}**" if args.set else "")
        + ". Columns: `conformal` split-conformal (the default); "
        "`cross` the cross-conformal factor, fixed; `cross + rolling` **the method under "
        "test**; `rolling` split-conformal's factor refitted by the same window; `model` the "
        "likelihood's own interval. Bold: inside 85-95%. Sampling noise (95%, independent "
        f"values): {noise}.\n\n"
        f"**Cross + rolling inside 85-95%: {inside} of {len(rows)} rows.**\n\n"
        f"Reproduce: `.venv/bin/python {script}"
        + (f" --set {' '.join(args.set)} --out {_relative(args.out)}" if args.set else "")
        + "`\n\n"
        "| dataset | likelihood | series x origins | forecast values (distinct) | conformal "
        "| cross | cross + rolling | rolling | model | MASE | naive MASE | Theta MASE "
        "| stopped by (epochs) |\n" + "|---" * 13 + "|\n"
        + "\n".join(_line(r) for r in rows) + "\n")


if __name__ == "__main__":
    main()
