"""``rnnkit train``: one config file (or none) → a trained run directory."""
# ruff: noqa: B008  (typer declares arguments and options as parameter defaults)

from __future__ import annotations

import time
from pathlib import Path

import typer

from rnnkit.cli.errors import handle_errors
from rnnkit.tasks import TrainOutcome, load_config
from rnnkit.tasks import train as train_run

RUNS_DIR = Path("runs")

CONFIG_ARGUMENT = typer.Argument(
    None, help="YAML or TOML run config (sections task, data, model, train, tune). "
    "Omit it to train the default char-level LSTM on the bundled Shakespeare sample.",
    show_default=False,
)
SET_OPTION = typer.Option(
    [], "--set", "-s", metavar="SECTION.KEY=VALUE",
    help="Override a config key, e.g. --set train.lr=0.001 (repeatable; type-checked).",
)


def default_run_dir(config_path: Path | None, reuse: bool) -> Path:
    """``runs/<config name>``; when it exists and is not being reused, ``runs/<name>-2``, ..."""
    stem = config_path.stem if config_path is not None else "shakespeare"
    candidate, number = RUNS_DIR / stem, 2
    while not reuse and candidate.exists():
        candidate, number = RUNS_DIR / f"{stem}-{number}", number + 1
    return candidate


@handle_errors
def train(
    config: Path = CONFIG_ARGUMENT,
    out: Path = typer.Option(None, "--out", "-o",
                             help="Run directory (default runs/<config name>)."),
    overrides: list[str] = SET_OPTION,
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run in --out."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a model from a config file and save the run (checkpoints, metrics, config)."""
    if config is None and resume and out is not None and (out / "config.yaml").is_file():
        config = out / "config.yaml"
    run_config = load_config(config, [*overrides, f"train.progress={str(progress).lower()}"])
    run_dir = out if out is not None else default_run_dir(config, resume or overwrite)
    data = run_config.data
    typer.echo(f"Training {run_config.task} ({run_config.model.cell}, "
               f"{run_config.model.num_layers}x{run_config.model.hidden_size}) on "
               f"{data.dataset or data.train} → {run_dir}", err=True)
    started = time.monotonic()
    outcome = train_run(run_config, run_dir, resume=resume, overwrite=overwrite)
    print_summary(outcome, time.monotonic() - started)


def _format_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def print_summary(outcome: TrainOutcome, seconds: float) -> None:
    """Where the run ended, its best metric, the checkpoint and what to run next."""
    fit, run_dir = outcome.fit, outcome.run_dir
    minutes, secs = divmod(int(seconds), 60)
    typer.echo(f"Done: {fit.stop_reason} after {fit.global_step} steps "
               f"({fit.epoch} epochs) in {minutes}m{secs:02d}s.")
    if fit.best_metric is not None:
        typer.echo(f"Best {outcome.monitor}: {fit.best_metric:.4f} (step {fit.best_step})")
    typer.echo(f"Validation: {_format_metrics(outcome.valid_metrics)}")
    if outcome.test_metrics:
        typer.echo(f"Test: {_format_metrics(outcome.test_metrics)}")
    typer.echo(f"Checkpoint: {outcome.checkpoint}")
    task = outcome_task(run_dir)
    typer.echo("Next:")
    if task == "language_model":
        typer.echo(f"  rnnkit generate {run_dir} --length 300")
    elif task == "conditional_generation":
        typer.echo(f"  rnnkit generate {run_dir} --condition <label>")
    else:
        typer.echo(f"  rnnkit predict {run_dir} --input <file>")
    typer.echo(f"  rnnkit evaluate {run_dir} --data <file in the training format>")
    typer.echo(f"  rnnkit export {run_dir} --format onnx")


def outcome_task(run_dir: Path) -> str:
    """The task name stored in ``run_dir/task.json``."""
    import json

    return json.loads((run_dir / "task.json").read_text(encoding="utf-8"))["task"]
