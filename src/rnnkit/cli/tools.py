"""``rnnkit tune`` (Optuna search) and ``rnnkit export`` (ONNX / TorchScript)."""
# ruff: noqa: B008  (typer declares arguments and options as parameter defaults)

from __future__ import annotations

from pathlib import Path

import typer

from rnnkit.cli.errors import handle_errors
from rnnkit.cli.inference import DIR_ARGUMENT
from rnnkit.cli.train import SET_OPTION
from rnnkit.tasks import load_config, load_run


@handle_errors
def tune(
    config: Path = typer.Argument(..., help="Run config with a tune: section.", show_default=False),
    trials: int = typer.Option(..., "--trials", "-n", min=1,
                               help="Trials in total (shared by every worker of the study)."),
    storage: str = typer.Option(None, "--storage",
                                help="Optuna storage URL (default sqlite:///OUT/study.db; e.g. "
                                     "postgresql://user:pw@host/db for several machines)."),
    study: str = typer.Option(None, "--study", help="Study name (default: the config's name)."),
    timeout: float = typer.Option(None, "--timeout", min=0.0, help="Stop after MIN minutes."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="Output directory (default runs/tune-NAME)."),
    overrides: list[str] = SET_OPTION,
) -> None:
    """Search hyper-parameters with Optuna (median pruning on the validation metric)."""
    from rnnkit.tasks.tune import tune as run_tune

    run_config = load_config(config, [*overrides, "train.progress=false"])
    out = out if out is not None else Path("runs") / f"tune-{config.stem}"
    outcome = run_tune(run_config, out, trials, storage, study or config.stem, timeout,
                       report=lambda line: typer.echo(line, err=True))
    if outcome.best_config is None:
        typer.echo("No trial finished with a validation metric.")
        return
    typer.echo(f"Best value: {outcome.best_value:.4f} with {outcome.best_params}")
    typer.echo(f"Best config: {outcome.best_config}")
    typer.echo(f"Train it: rnnkit train {outcome.best_config}")


@handle_errors
def export(
    run_dir: Path = DIR_ARGUMENT,
    fmt: str = typer.Option(..., "--format", "-f", help="onnx or torchscript."),
    out: Path = typer.Option(None, "--out", "-o", help="Output file (default DIR/model.onnx or "
                                                       "DIR/model.pt)."),
) -> None:
    """Export the model and check it against PyTorch on random inputs of two sizes."""
    from rnnkit.tasks.export import export_model

    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"--format: expected onnx or torchscript, got {fmt!r}")
    run = load_run(run_dir)
    target = out if out is not None else run_dir / ("model.onnx" if fmt == "onnx" else "model.pt")
    relative = run.task.name == "forecasting" and run.config.data.normalize == "last_value"
    report = export_model(run.model, target, fmt, relative_forecast=relative)
    files = ", ".join(str(f) for f in report.files)
    typer.echo(f"Exported {run.task.model_type} to {files} ({fmt})")
    worst = max(report.max_abs_diff.values())
    checker = "onnxruntime" if fmt == "onnx" else "the reloaded TorchScript module"
    for sizes, difference in report.max_abs_diff.items():
        typer.echo(f"  {checker} vs PyTorch, {sizes}: max abs difference {difference:.3g}")
    if worst > 1e-3:
        raise RuntimeError(f"export check failed: max abs difference {worst:.3g} > 1e-3")
