"""``rnnkit backtest``: forecasts from many origins of a file, scored per origin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.errors import handle_errors
from rnnkit.tasks import TASKS, load_run
from rnnkit.tasks.backtest import BacktestSettings, run_backtest, save_backtest
from rnnkit.tasks.errors import TaskMismatchError


@handle_errors
def backtest(
    run_dir: Annotated[Path, typer.Argument(
        help="A forecasting run made by `rnnkit train`.", show_default=False)],
    data: Annotated[Path, typer.Option(
        "--data", "-d",
        help="Series file in the training format (the whole series, or what follows the "
        "training data).")],
    horizon: Annotated[int | None, typer.Option(
        "--horizon", min=1, help="Steps scored per origin (default: the run's horizon).")] = None,
    stride: Annotated[int | None, typer.Option(
        "--stride", min=1, help="Steps between origins (default: the horizon).")] = None,
    window: Annotated[str, typer.Option(
        "--window",
        help="With --retrain: expanding (all data before the origin) or rolling (the last "
        "--train-size steps).")] = "expanding",
    retrain: Annotated[bool, typer.Option(
        "--retrain",
        help="Train a fresh model for each origin on the data before it (slow).")] = False,
    train_size: Annotated[int | None, typer.Option(
        "--train-size", min=1, help="Rolling window length in steps.")] = None,
    train_steps: Annotated[int | None, typer.Option(
        "--train-steps", min=1, help="With --retrain: cap each training at N steps.")] = None,
    calibration_window: Annotated[int | None, typer.Option(
        "--calibration-window", min=0,
        help="Refit the interval's conformal factor at each origin on the last N forecasts "
        "whose horizons have elapsed (default: the run's data.calibration_window; 0: the "
        "validation factor throughout).")] = None,
    calibration_adapt: Annotated[float | None, typer.Option(
        "--calibration-adapt", min=0.0, metavar="GAMMA",
        help="Adaptive conformal inference on top of --calibration-window: after each "
        "forecast whose horizon has elapsed, the level of the refit moves by GAMMA times "
        "(target miss rate - its miss rate), so bursts of misses widen the next intervals "
        "fast (default: the run's data.calibration_adapt; 0: off).")] = None,
    calibration_seed: Annotated[bool, typer.Option(
        "--calibration-seed/--no-calibration-seed",
        help="Start the --calibration-window from the run's saved validation forecasts "
        "(those ended before each origin by their time labels) instead of the validation "
        "factor; runs saved without them calibrate as before.")] = False,
    calibration_per_step: Annotated[bool | None, typer.Option(
        "--calibration-per-step/--no-calibration-per-step",
        help="With --calibration-window: one factor per lead time, each refitted on the "
        "window's errors at that lead (default: the run's data.calibration_per_step).")] = None,
) -> None:
    """Backtest a forecasting run: print per-origin and aggregated metrics and save them
    (CSV + JSON) in RUN/backtest/."""
    if not data.is_file():
        raise FileNotFoundError(f"--data: file not found: {data}")
    if window not in ("expanding", "rolling"):
        raise ValueError(f"--window: expected expanding or rolling, got {window!r}")
    if window == "rolling" and retrain and train_size is None:
        raise ValueError("--train-size: needed with --window rolling --retrain (steps of "
                         "history each model trains on)")
    run = load_run(run_dir)
    if not run.task.supports_backtest:
        wanted = " or ".join(name for name, task in TASKS.items() if task.supports_backtest)
        raise TaskMismatchError(f"backtest: the run's task is {run.task.name}; backtesting is "
                                f"for {wanted} runs")
    settings = BacktestSettings(horizon, stride, window, retrain, train_size,  # type: ignore[arg-type]
                                train_steps, calibration_window, calibration_adapt,
                                calibration_seed, calibration_per_step)
    result = run_backtest(run, data, settings,
                          notice=lambda line: typer.echo(line, err=True))
    _print(result)
    directory = save_backtest(result, run_dir)
    typer.echo(f"Wrote {directory}/origins.csv, forecasts.csv and summary.json", err=True)


def _print(result) -> None:
    names = [n for n in ("mae", "smape", "mase", "naive_mase", "theta_mase", "ets_mase",
                         "coverage", "factor")
             if n in result.origins[0]]
    typer.echo("series  origin  time        " + "  ".join(f"{n:>10}" for n in names))
    for row in result.origins:
        values = "  ".join(f"{row[n]:>10.4f}" for n in names)
        typer.echo(f"{row['series'] or '-':<6}  {row['origin']:>6}  {row['time']!s:<10}  "
                   f"{values}")
    typer.echo("aggregate over origins:")
    for name, value in result.aggregate.items():
        typer.echo(f"  {name:<11} {value:.4f}" if isinstance(value, float) else
                   f"  {name:<11} {value}")
    if "coverage_low" in result.aggregate:
        typer.echo(coverage_sentence(result.aggregate))


def coverage_sentence(aggregate: dict) -> str:
    """What the coverage's interval means, in words: overlapping forecasts score each value
    several times, so the values behind a coverage are fewer than the forecast steps."""
    return (f"coverage {aggregate['coverage']:.3f}: 95% interval "
            f"{aggregate['coverage_low']:.3f}-{aggregate['coverage_high']:.3f}, as precise as "
            f"{aggregate['coverage_values']:.0f} independent values (moving-block bootstrap)")
