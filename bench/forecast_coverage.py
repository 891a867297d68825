"""Interval coverage per dataset and likelihood: train each example config with each
``model.likelihood``, then score the test split (or the last ``valid_fraction`` held out) before
and after split-conformal calibration. Writes bench/results/forecast_coverage.md.

    .venv/bin/python bench/forecast_coverage.py                      # the full grid
    .venv/bin/python bench/forecast_coverage.py --configs air_passengers forecast_promotions \
        --likelihoods gaussian student_t quantile --max-time 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit import tasks
from rnnkit.tasks import forecast_probability as fp
from rnnkit.tasks.data_files import resolve_paths

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("air_passengers", "sunspots", "forecast_promotions", "forecast_stores")
LIKELIHOODS = ("gaussian", "student_t", "quantile")


def held_out(run):
    """The test file's series, or for configs without one the training file's last part."""
    paths = resolve_paths(run.config.data)
    if paths["test"] is not None:
        return run.task.read(paths["test"])
    return run.task.hold_out(run.task.read(paths["train"]))[1]


def measure(config_name: str, likelihood: str, max_time: float, out: Path) -> dict:
    overrides = [f"model.likelihood={likelihood}", "model.gaussian=null",
                 f"train.max_time={max_time}", "train.progress=false"]
    config = tasks.load_config(ROOT / "examples" / f"{config_name}.yaml", overrides)
    run_dir = out / f"{config_name}_{likelihood}"
    start = time.perf_counter()
    tasks.train(config, run_dir, overwrite=run_dir.exists())
    seconds = time.perf_counter() - start
    run = tasks.load_run(run_dir)
    examples = held_out(run)
    metrics = run.task.scores(run.model, examples)[0]
    series = examples if isinstance(examples, list) else [examples]
    windows = run.task.windows(series)
    raw = run.task.forecast(run.model, windows, calibrated=False)
    raw_coverage = fp.probabilistic_scores(raw, windows.future)["coverage"]
    return {"dataset": config_name, "likelihood": likelihood, "values": int(windows.future.size),
            "raw": raw_coverage, "conformal": metrics["coverage"],
            "factor": run.task.artifacts.get("conformal_factor", float("nan")),
            "crps": metrics.get("crps", float("nan")), "wql": metrics["wql"],
            "mase": metrics["mase"], "theta_mase": metrics["theta_mase"],
            "naive_mase": metrics["naive_mase"], "seconds": seconds}


def table(rows: list[dict]) -> str:
    head = ("| dataset | likelihood | held-out values | coverage, model | coverage, conformal "
            "| factor | CRPS | wQL | MASE | Theta MASE | naive MASE | train s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['dataset']} | {r['likelihood']} | {r['values']} | {r['raw']:.3f} | "
        f"{r['conformal']:.3f} | {r['factor']:.2f} | {r['crps']:.4f} | {r['wql']:.4f} | "
        f"{r['mase']:.3f} | {r['theta_mase']:.3f} | {r['naive_mase']:.3f} | {r['seconds']:.0f} |\n"
        for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--likelihoods", nargs="+", default=list(LIKELIHOODS))
    parser.add_argument("--max-time", type=float, default=2.0, help="minutes per training")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" /
                        "forecast_coverage.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.configs:
            for likelihood in args.likelihoods:
                rows.append(measure(name, likelihood, args.max_time, Path(scratch)))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    binomial = {r["values"]: 1.96 * np.sqrt(0.09 / r["values"]) for r in rows}
    note = "; ".join(f"{n} values: ±{w:.3f}" for n, w in sorted(binomial.items()))
    text = ("# Forecast interval coverage (nominal 90%)\n\n"
            "`coverage, model`: the likelihood's own 90% interval; `coverage, conformal`: after "
            "split-conformal scaling fitted on the validation split (`data.calibration: "
            "conformal`, the default); `factor`: that scaling. Test split (held-out tail where "
            "a config has no test file), one seed, CPU, 1 thread, "
            f"`train.max_time={args.max_time}` minutes.\n\n"
            f"Sampling noise of a coverage estimate (95%, independent values): {note}. "
            "Values of one window are correlated, so the real noise is larger.\n\n"
            "Reproduce: `.venv/bin/python bench/forecast_coverage.py "
            f"--configs {' '.join(args.configs)} --likelihoods {' '.join(args.likelihoods)} "
            f"--max-time {args.max_time}`\n\n" + table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
