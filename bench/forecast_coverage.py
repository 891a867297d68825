"""Interval coverage per dataset and likelihood on held-out values that calibration never saw.

Each example config is trained with each ``model.likelihood``; the split-conformal factor is
fitted on the validation split while training (``data.calibration: conformal``). The model is
then scored by a rolling-origin backtest over the test split (``tasks/backtest.py``, stride 1,
the run's horizon): every origin of the test period forecasts ``horizon`` steps, so each dataset
contributes ``origins x horizon`` forecast values. Configs without a test file (the store panel,
the promotions series) get one here: the last ``--test-steps`` steps of every series are cut off
into a test file before training, so validation (early stopping and calibration) comes from the
part before. With ``--calibration-window N`` the same origins are also scored with rolling
conformal calibration (each origin's factor refitted on the last N forecasts of its series
whose horizons ended before it; ``rnnkit backtest --calibration-window N``), overall and on
the "late" origins, those that have N such forecasts behind them. With ``--calibration-adapt
GAMMA`` too, also with adaptive conformal inference on top of the rolling factor
(``rnnkit backtest --calibration-adapt GAMMA``). With ``--cross K`` each run is trained with
cross-conformal calibration (``data.calibration: cross``, ``data.calibration_folds: K``): the
main model is the same as without it (its training comes first, with the same seed), so the
split-conformal columns use the validation-only factor the run records, and the cross columns
the pooled one (fixed, and as the rolling/adaptive fallback until N forecasts have ended).
Writes bench/results/forecast_coverage.md.

    .venv/bin/python bench/forecast_coverage.py                      # the full grid
    .venv/bin/python bench/forecast_coverage.py --configs electricity_covariates \
        --likelihoods gaussian --max-time 0.5
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from rnnkit import tasks
from rnnkit.tasks.backtest import BacktestSettings, run_backtest
from rnnkit.tasks.data_files import resolve_paths

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("sunspots", "electricity_covariates", "forecast_stores", "forecast_promotions")
LIKELIHOODS = ("gaussian", "student_t", "quantile")
NOMINAL = 0.90


def cut_test(path: Path, steps: int, id_column: str, out: Path) -> tuple[Path, Path]:
    """Write ``out/train.csv`` (every series but its last ``steps`` rows) and
    ``out/test.csv`` (those rows); a long-format file is cut per ``id_column`` series."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    key = header.index(id_column) if id_column in header else None
    by_series: dict[str, list[list[str]]] = defaultdict(list)
    for row in body:
        by_series[row[key] if key is not None else ""].append(row)
    parts = {"train": [], "test": []}
    for series in by_series.values():
        if len(series) <= 3 * steps:
            raise SystemExit(f"{path}: a series of {len(series)} rows is too short to cut "
                             f"--test-steps={steps} off it and still train")
        parts["train"] += series[:-steps]
        parts["test"] += series[-steps:]
    out.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows([header, *part])
    return out / "train.csv", out / "test.csv"


def config_path(config_name: str) -> Path:
    """An example's name (``examples/NAME.yaml``) or a path to a config file."""
    if config_name.endswith((".yaml", ".yml", ".toml")):
        return Path(config_name)
    return ROOT / "examples" / f"{config_name}.yaml"


def dataset_label(config_name: str) -> str:
    return Path(config_name).stem


def prepare_config(config_name: str, likelihood: str, max_time: float, test_steps: int,
                   scratch: Path, extra: tuple[str, ...] = ()):
    """The example's config with ``likelihood`` (and ``extra`` overrides), and the test file to
    backtest on."""
    overrides = [f"model.likelihood={likelihood}", "model.gaussian=null",
                 f"train.max_time={max_time}", "train.progress=false", *extra]
    path = config_path(config_name)
    config = tasks.load_config(path, overrides)
    paths = resolve_paths(config.data)
    if paths["test"] is not None:
        return config, paths["test"]
    train, test = cut_test(paths["train"], test_steps, config.data.id_column,
                           scratch / f"{dataset_label(config_name)}_data")
    return tasks.load_config(path, [*overrides, f"data.train={train}"]), test


def _late_coverage(result, window: int) -> float:
    """Coverage over the origins that have ``window`` forecasts of their series ended
    before them (where rolling calibration has its own factor)."""
    horizon = result.settings.horizon
    rows = []
    for series in dict.fromkeys(r["series"] for r in result.origins):
        origins = [r for r in result.origins if r["series"] == series]
        first = origins[0]["origin"] + window + horizon - 1
        rows += [r for r in origins if r["origin"] >= first]
    return float(np.mean([r["coverage"] for r in rows])) if rows else float("nan")


def measure(config_name: str, likelihood: str, max_time: float, test_steps: int,
            scratch: Path, extra: tuple[str, ...] = (), window: int = 0,
            gamma: float = 0.0, cross: int = 0) -> dict:
    if cross:
        extra = (*extra, "data.calibration=cross", f"data.calibration_folds={cross}")
    config, test = prepare_config(config_name, likelihood, max_time, test_steps, scratch, extra)
    run_dir = scratch / f"{dataset_label(config_name)}_{likelihood}"
    start = time.perf_counter()
    outcome = tasks.train(config, run_dir, overwrite=run_dir.exists())
    seconds = time.perf_counter() - start
    run = tasks.load_run(run_dir)
    crossed = {}
    if cross:
        record = run.task.artifacts["cross_calibration"]
        crossed = {"cross_factor": run.task.artifacts["conformal_factor"],
                   "cross_s": record["cpu_seconds"], "cross_scores": record["fold_scores"]}
        fixed = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=0))
        crossed["cross"] = fixed.aggregate["coverage"]
        for name, adapt in (("rolling", 0.0), ("adaptive", gamma)):
            if window and (adapt or name == "rolling"):
                online = run_backtest(run, test, BacktestSettings(
                    stride=1, calibration_window=window, calibration_adapt=adapt))
                crossed[f"cross_{name}"] = online.aggregate["coverage"]
        # The columns below are split-conformal's: the validation-only factor.
        run.task.artifacts["conformal_factor"] = record["validation_factor"]
    calibrated = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=0))
    rolling = {}
    if window:
        rolling["late_fixed"] = _late_coverage(calibrated, window)
    # Each online calibration with the window seeded from the run's validation scores and,
    # after "/", without (as runs saved before those scores were).
    for name, adapt, per_step in (("rolling", 0.0, False), ("adaptive", gamma, False),
                                  ("rolling_step", 0.0, True), ("adaptive_step", gamma, True)):
        if not window or (name.startswith("adaptive") and not gamma):
            continue
        for seeded in (True, False):
            online = run_backtest(run, test, BacktestSettings(
                stride=1, calibration_window=window, calibration_adapt=adapt,
                calibration_seed=seeded, calibration_per_step=per_step))
            suffix = "" if seeded else "_unseeded"
            rolling[name + suffix] = online.aggregate["coverage"]
            for bound in ("low", "high", "values"):
                rolling[f"{name}{suffix}_{bound}"] = online.aggregate[f"coverage_{bound}"]
            rolling[f"late_{name}{suffix}"] = _late_coverage(online, window)
    # The same origins without the conformal factor: the likelihood's own interval.
    run.task.config.data.calibration = "none"
    raw = run_backtest(run, test, BacktestSettings(stride=1, calibration_window=0))
    scored = calibrated.forecasts
    distinct = len({(r["series"], r["time"]) for r in scored})
    return {"dataset": dataset_label(config_name), "likelihood": likelihood, **rolling,
            **crossed,
            "stop": outcome.fit.stop_reason, "epochs": outcome.fit.epoch,
            "series": len({r["series"] for r in scored}),
            "origins": int(calibrated.aggregate["origins"]), "values": len(scored),
            "distinct": distinct, "raw": raw.aggregate["coverage"],
            "conformal": calibrated.aggregate["coverage"],
            # how precisely that coverage is known (forecast_metrics.coverage_interval)
            "conformal_low": calibrated.aggregate["coverage_low"],
            "conformal_high": calibrated.aggregate["coverage_high"],
            "conformal_values": calibrated.aggregate["coverage_values"],
            "factor": run.task.artifacts.get("conformal_factor", float("nan")),
            "crps": calibrated.aggregate.get("crps", float("nan")),
            "wql": calibrated.aggregate["wql"], "mase": calibrated.aggregate["mase"],
            "theta_mase": calibrated.aggregate["theta_mase"],
            "naive_mase": calibrated.aggregate["naive_mase"], "seconds": seconds}


def table(rows: list[dict]) -> str:
    rolling = any("rolling" in r for r in rows)
    adaptive = any("adaptive" in r for r in rows)
    extra = (" | coverage, rolling: seeded / not | late: conformal / rolling seeded / not"
             if rolling else "") + (
        " | coverage, adaptive: seeded / not | late: adaptive seeded / not" if adaptive else "")
    extra += (" | rolling per step: seeded / not" if rolling else "") + (
        " | adaptive per step: seeded / not" if adaptive else "")
    cross = any("cross" in r for r in rows)
    extra += (" | coverage, cross | cross: rolling / adaptive | cross factor | cross CPU s"
              if cross else "")
    head = ("| dataset | likelihood | series x origins | forecast values (distinct) "
            f"| coverage, model | coverage, conformal{extra} | factor | CRPS | wQL | MASE "
            "| Theta MASE | naive MASE | train s | stopped by (epochs) |\n"
            + "|---" * (14 + 3 * rolling + 3 * adaptive + 4 * cross) + "|\n")

    def rolled(r: dict) -> str:
        text = ""
        if rolling:
            text += (f" | {_pair(r, 'rolling')} | {_mark(r['late_fixed'])} / "
                     f"{_pair(r, 'late_rolling')}")
        if adaptive:
            text += f" | {_pair(r, 'adaptive')} | {_pair(r, 'late_adaptive')}"
        if rolling:
            text += f" | {_pair(r, 'rolling_step')}"
        if adaptive:
            text += f" | {_pair(r, 'adaptive_step')}"
        if cross:
            online = " / ".join(_mark(r[k]) for k in ("cross_rolling", "cross_adaptive")
                                if k in r) or "-"
            text += (f" | {_mark(r['cross'])} | {online} | {r['cross_factor']:.2f} "
                     f"| {r['cross_s']:.0f}")
        return text

    return head + "".join(
        f"| {r['dataset']} | {r['likelihood']} | {r['origins']} | {r['values']} "
        f"({r['distinct']}) | {_mark(r['raw'])} | {_mark(r['conformal'])}{rolled(r)} "
        f"| {r['factor']:.2f} | {r['crps']:.4f} | {r['wql']:.4f} | {r['mase']:.3f} "
        f"| {r['theta_mase']:.3f} | {r['naive_mase']:.3f} | {r['seconds']:.0f} "
        f"| {r['stop']} ({r['epochs']}) |\n"
        for r in rows)


def _pair(r: dict, name: str) -> str:
    return f"{_mark(r[name])} / {_mark(r[name + '_unseeded'])}"


def _mark(coverage: float) -> str:
    """Coverage in bold when inside the 85-95% target."""
    text = f"{coverage:.3f}"
    return f"**{text}**" if 0.85 <= coverage <= 0.95 else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--likelihoods", nargs="+", default=list(LIKELIHOODS))
    parser.add_argument("--max-time", type=float, default=1.0, help="minutes per training")
    parser.add_argument("--test-steps", type=int, default=56,
                        help="steps cut off each series as test where a config has no test file")
    parser.add_argument("--calibration-window", type=int, default=0, metavar="N",
                        help="also score rolling conformal calibration over N forecasts")
    parser.add_argument("--calibration-adapt", type=float, default=0.0, metavar="GAMMA",
                        help="also score adaptive conformal inference with step size GAMMA "
                        "on top of the rolling window")
    parser.add_argument("--cross", type=int, default=0, metavar="K",
                        help="train with cross-conformal calibration over K training blocks "
                        "and score it next to split-conformal")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run, e.g. model.strategy=autoregressive")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" /
                        "forecast_coverage.md")
    parser.add_argument("--keep-runs", type=Path, default=None, metavar="DIR",
                        help="train the runs under DIR and keep them (default: a temporary "
                        "directory), to backtest them again without retraining")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        scratch = args.keep_runs or temporary
        for name in args.configs:
            for likelihood in args.likelihoods:
                rows.append(measure(name, likelihood, args.max_time, args.test_steps,
                                    Path(scratch), tuple(args.set), args.calibration_window,
                                    args.calibration_adapt, args.cross))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    noise = "; ".join(f"{r['dataset']}: ±{1.96 * np.sqrt(0.09 / r['distinct']):.3f}"
                      for r in {r["dataset"]: r for r in rows}.values())
    text = ("# Forecast interval coverage (nominal 90%), held out from calibration\n\n"
            "Rolling-origin backtest (`rnnkit backtest --stride 1`) over each test split: every "
            "origin of the test period forecasts the run's horizon. The conformal factor was "
            "fitted on the validation split, which lies before the test split and shares no "
            "value with it. `coverage, model`: the likelihood's own 90% interval; `coverage, "
            "conformal`: after split-conformal scaling (`data.calibration: conformal`, the "
            "default); `factor`: that scaling; `coverage, rolling`: with the factor refitted "
            "at each origin on the last N forecasts whose horizons had ended "
            "(`--calibration-window N`, the validation factor until N exist); `late`: the "
            "origins that have N such forecasts behind them, without and with rolling "
            "calibration; `coverage, adaptive` / `late: adaptive`: adaptive conformal "
            "inference on top of the rolling factor (`--calibration-adapt GAMMA`: the "
            "miscoverage level alpha its quantile is taken at (start 0.1) moves by GAMMA · "
            "(0.1 - miss rate) after each ended forecast); `seeded / not`: the rolling "
            "window started from the run's validation forecasts ended before each origin "
            "(`--calibration-seed`) / from the validation factor until N test forecasts "
            "have ended (the default); `per step`: one factor per lead time, each the "
            "window's quantile of that lead's scores (`--calibration-per-step`); "
            "`stopped by`: what ended training (`early_stopping`, the config's "
            "`max_epochs`, or the `max_time` budget); bold: inside the 85-95% target. "
            "Configs without "
            f"a test file had their last {args.test_steps} steps per series cut off as test. "
            "One seed, CPU, 1 thread, "
            f"`train.max_time={args.max_time}` minutes"
            + (f", rolling window N = {args.calibration_window} forecasts"
               if args.calibration_window else "")
            + (f", adaptive step GAMMA = {args.calibration_adapt}"
               if args.calibration_adapt else "")
            + (f"; `coverage, cross`: cross-conformal factor (`data.calibration: cross`, "
               f"{args.cross} folds; `cross: rolling / adaptive`: that factor as the rolling "
               "window's fallback, unseeded; `cross CPU s`: the fold models' training and "
               "forecasting, process CPU time)" if args.cross else "") + ".\n\n"
            "Sampling noise (95%, if the distinct held-out values were independent): "
            f"{noise}. Overlapping windows score each value up to horizon times and errors are "
            "autocorrelated, so the real noise is larger.\n\n"
            "Reproduce: `.venv/bin/python bench/forecast_coverage.py "
            f"--configs {' '.join(args.configs)} --likelihoods {' '.join(args.likelihoods)} "
            f"--max-time {args.max_time} --test-steps {args.test_steps}"
            + (f" --calibration-window {args.calibration_window}"
               if args.calibration_window else "")
            + (f" --calibration-adapt {args.calibration_adapt}" if args.calibration_adapt else "")
            + (f" --cross {args.cross}" if args.cross else "")
            + (f" --set {' '.join(args.set)}" if args.set else "") + "`\n\n" + table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
