"""``rnnkit tune`` (Optuna or Ray Tune search) and ``rnnkit export`` (ONNX / TorchScript)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.errors import handle_errors
from rnnkit.cli.inference import RunDirArgument
from rnnkit.cli.train import SetOption
from rnnkit.tasks import load_config, load_run
from rnnkit.tasks.export import export_model
from rnnkit.tasks.tune import tune as run_tune
from rnnkit.tasks.tune_ray import tune_ray


@handle_errors
def tune(
    config: Annotated[Path, typer.Argument(
        help="Run config with a tune: section.", show_default=False)],
    trials: Annotated[int | None, typer.Option(
        "--trials", "-n", min=1,
        help="Trials in total (shared by every worker of the study); a grid search defaults "
        "to its number of combinations.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", metavar="optuna|ray",
        help="Optuna (trials in this process, shared storage) or Ray Tune (trials as Ray "
        "tasks, ASHA or PBT; rnnkit[ray]).")] = "optuna",
    address: Annotated[str | None, typer.Option(
        "--address", metavar="HOST:PORT",
        help="Ray: an existing cluster (default: a local Ray runtime started for this "
        "search).")] = None,
    storage: Annotated[str | None, typer.Option(
        "--storage",
        help="Optuna storage URL (default sqlite:///OUT/study.db; e.g. "
        "postgresql://user:pw@host/db for several machines).")] = None,
    study: Annotated[str | None, typer.Option(
        "--study", help="Study name (default: the config's name).")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.0, help="Stop after MIN minutes.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output directory (default runs/tune-NAME).")] = None,
    overrides: SetOption = None,
) -> None:
    """Search hyper-parameters (tune.strategy: tpe, random or grid; tune.pruner: median, asha,
    hyperband, pbt or none); print the trials as they finish, the best config and the command
    that trains it."""
    run_config = load_config(config, [*(overrides or []), "train.progress=false"])
    out = out if out is not None else Path("runs") / f"tune-{config.stem}"
    if engine == "optuna":
        if address is not None:
            raise ValueError(f"--address: used by --engine ray only, got --engine {engine}")
        outcome = run_tune(run_config, out, trials, storage, study or config.stem, timeout,
                           report=_to_stderr)
    elif engine == "ray":
        if storage is not None:
            raise ValueError("--storage: used by --engine optuna only (Ray keeps its results "
                             "in OUT/ray), got --engine ray")
        outcome = tune_ray(run_config, out, trials, address, study or config.stem, timeout,
                           report=_to_stderr)
    else:
        raise ValueError(f"--engine: expected optuna or ray, got {engine!r}")
    _print_tune_outcome(outcome, out)


def _to_stderr(line: str) -> None:
    typer.echo(line, err=True)


def _print_tune_outcome(outcome, out: Path) -> None:
    """How many trials ran, the best one and the command that trains its config."""
    held = len(outcome.trials)
    note = "" if held == outcome.new_trials else f" (the study holds {held} in all)"
    typer.echo(f"Ran {outcome.new_trials} new trial{'s' * (outcome.new_trials != 1)}{note}.")
    if outcome.new_trials == 0:
        typer.echo("--trials counts the study's total; raise it to run more.")
    if outcome.best_config is None:
        typer.echo("No trial finished with a validation metric.")
        return
    best = outcome.best
    typer.echo(f"Best: trial {best.number}, {outcome.monitor}={best.value:.4f} with "
               f"{best.params}")
    typer.echo(f"Best config: {outcome.best_config}")
    train_out = out.parent / f"{out.name}-best"
    typer.echo(f"Train it: rnnkit train {shlex.quote(str(outcome.best_config))} --out "
               f"{shlex.quote(str(train_out))}")


@handle_errors
def export(
    run_dir: RunDirArgument,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", metavar="onnx|torchscript", help="onnx or torchscript.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output file (default DIR/model.onnx or DIR/model.pt).")] = None,
) -> None:
    """Export the model and check it against PyTorch on random inputs of two sizes."""
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"--format: expected onnx or torchscript, got {fmt!r}")
    run = load_run(run_dir)
    target = out if out is not None else run_dir / ("model.onnx" if fmt == "onnx" else "model.pt")
    report = export_model(run.model, target, fmt, **run.task.export_options())
    files = ", ".join(str(f) for f in report.files)
    typer.echo(f"Exported {run.task.model_type} to {files} ({fmt})")
    for file, names in zip(report.files, report.inputs, strict=True):
        typer.echo(f"  inputs of {file.name}: {', '.join(names)}")
    worst = max(report.max_abs_diff.values())
    checker = "onnxruntime" if fmt == "onnx" else "the reloaded TorchScript module"
    for sizes, difference in report.max_abs_diff.items():
        typer.echo(f"  {checker} vs PyTorch, {sizes}: max abs difference {difference:.3g}")
    if worst > 1e-3:
        raise RuntimeError(f"export check failed: max abs difference {worst:.3g} > 1e-3")
