"""Per-lead-time rolling conformal factors against a placebo, on runs kept by
``bench/forecast_coverage.py --keep-runs DIR``: the same per-step quantiles (N = 14 scores each)
with every forecast's lead times shuffled, so what the lead adds is gone and only the smaller
sample behind each quantile (its higher finite-sample level) remains. Prints test coverage of
both, with the window seeded from validation forecasts and not.

    .venv/bin/python bench/forecast_coverage_placebo.py DIR
"""
import sys
from pathlib import Path

import numpy as np
import torch

from rnnkit import tasks
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.backtest import _seeds, _trim, origin_windows, rolling_factors
from rnnkit.tasks.data_files import resolve_paths

torch.set_num_threads(1)
root = Path(sys.argv[1])
for run_dir in sorted(root.glob("*_*")):
    if not (run_dir / "checkpoints").is_dir():
        continue
    run = tasks.load_run(run_dir)
    task = run.task
    test = resolve_paths(run.config.data)["test"]
    if test is None:
        name = run_dir.name
        for lik in ("_gaussian", "_student_t", "_quantile"):
            name = name.removesuffix(lik)
        test = root / f"{name}_data" / "test.csv"
    h = task.config.data.horizon
    series = task.read(test)
    series = series if isinstance(series, list) else [series]
    windows, where = origin_windows(series, task, h, 1)
    forecast = task.forecast(run.model, windows, calibrated=False)
    scores = fp.conformal_scores(_trim(forecast, h), windows.future)
    fallback = task.artifacts["conformal_factor"]
    out = []
    for seeded in (True, False):
        seeds = _seeds(task, series, h) if seeded else None
        per = rolling_factors(scores, where, h, 14, 0.9, fallback, 0.0, seeds, True)
        covs = []
        for rep in range(5):
            rng = np.random.default_rng(rep)
            shuffled = np.take_along_axis(scores, rng.permuted(
                np.broadcast_to(np.arange(h)[None, :, None], scores.shape), axis=1), axis=1)
            pseeds = None if seeds is None else {
                i: (np.take_along_axis(s, rng.permuted(np.broadcast_to(
                    np.arange(h)[None, :, None], s.shape), axis=1), axis=1), e)
                for i, (s, e) in seeds.items()}
            placebo = rolling_factors(shuffled, where, h, 14, 0.9, fallback, 0.0, pseeds, True)
            covs.append(float((scores <= placebo[:, :, None]).mean()))
        out.append(f"per-step {float((scores <= per[:, :, None]).mean()):.3f} placebo "
                   f"{np.mean(covs):.3f}±{np.std(covs):.3f}")
    print(f"{run_dir.name:34s} seeded: {out[0]} | unseeded: {out[1]}", flush=True)
