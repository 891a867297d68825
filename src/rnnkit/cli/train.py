"""``rnnkit train``: one config file (or none) → a trained run directory."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.errors import Settings, handle_errors, signal_exit_code
from rnnkit.tasks import TASKS, TrainOutcome, load_config
from rnnkit.tasks import train as train_run
from rnnkit.tasks.errors import RunDirError
from rnnkit.train import is_main_process, resolve_device
from rnnkit.train.distributed import (
    from_main,
    launch_local,
    launched_by_torchrun,
    process_group_from_env,
)
from rnnkit.train.interrupt import TrainingInterrupted, stop_signals_raise
from rnnkit.train.precision import check_amp

RUNS_DIR = Path("runs")

ConfigArgument = Annotated[Path | None, typer.Argument(
    help="YAML or TOML run config (sections task, data, model, train, tune). "
    "Omit it to train the default char-level LSTM on the bundled Shakespeare sample.",
    show_default=False,
)]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="SECTION.KEY=VALUE",
    help="Override a config key, e.g. --set train.lr=0.001 (repeatable; type-checked).",
    show_default=False,
)]


def default_run_dir(config_path: Path | None) -> Path:
    """``runs/<config name>``, always the same: training the same config again is refused
    there unless --resume or --overwrite says what to do (a silent ``runs/<name>-2`` left the
    README's next command on the old model)."""
    stem = config_path.stem if config_path is not None else "shakespeare"
    return RUNS_DIR / stem


CLI_TERMS = (("resume=True", "--resume"), ("overwrite=True", "--overwrite"),
             ("another run_dir", "another --out DIR"))


def in_cli_terms(error: RunDirError) -> RunDirError:
    """The run-directory refusal of the Python API, worded with this command's flags."""
    text = str(error)
    for api, flag in CLI_TERMS:
        text = text.replace(api, flag)
    return RunDirError(text)


@handle_errors
def train(
    config: ConfigArgument = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run directory (default runs/<config name>).")] = None,
    overrides: SetOption = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --out exactly.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing run in --out.")] = False,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Show a progress bar.")] = True,
    nproc: Annotated[int, typer.Option(
        "--nproc", min=1, metavar="N",
        help="Train data-parallel in N processes on this machine (torchrun; gloo on CPU, NCCL "
        "on CUDA). The global batch stays train.batch_size; each process gets its rows.")] = 1,
    device: Annotated[str | None, typer.Option(
        "--device", metavar="auto|cpu|cuda",
        help="Where to train (sets train.device; auto picks CUDA when present).")] = None,
    amp: Annotated[str | None, typer.Option(
        "--amp", metavar="bf16|fp16|none",
        help="Mixed precision on CUDA (sets train.amp; fp16 uses loss scaling).")] = None,
) -> None:
    """Train a model from a config file and save the run (checkpoints, metrics, config).

    Ctrl-C, SIGTERM or SIGHUP finish the current step, save checkpoints/last and exit with
    128 + the signal's number (130, 143, 129), printing the command that resumes the run.
    """
    with stop_signals_raise():  # SIGTERM/SIGHUP before training starts: clean up, exit 143/129
        _train(config, out, overrides or [], resume, overwrite, progress, nproc, device, amp)


def _train(config: Path | None, out: Path | None, overrides: list[str], resume: bool,
           overwrite: bool, progress: bool, nproc: int, device: str | None,
           amp: str | None) -> None:
    if config is None and resume and out is not None and (out / "config.yaml").is_file():
        config = out / "config.yaml"
    overrides = [*overrides, *([f"train.device={device}"] if device else []),
                 *([f"train.amp={amp}"] if amp else [])]
    run_config = load_config(config, [*overrides, f"train.progress={str(progress).lower()}"])
    check_amp(run_config.train.amp, resolve_device(run_config.train.device))
    if nproc > 1 and not launched_by_torchrun():
        run_dir = out if out is not None else default_run_dir(config)
        argv = _worker_argv(config, run_dir, overrides, resume, overwrite, progress)
        raise typer.Exit(launch_local(nproc, argv))
    with process_group_from_env(resolve_device(run_config.train.device)):
        # one rank picks the default directory, so that all ranks agree on it
        chosen = out if out is not None else default_run_dir(config)
        run_dir = from_main(chosen)
        data = run_config.data
        if is_main_process():
            typer.echo(f"Training {run_config.task} ({run_config.model.cell}, "
                       f"{run_config.model.num_layers}x{run_config.model.hidden_size}) on "
                       f"{data.dataset or data.train} → {run_dir}", err=True)
        started = time.monotonic()
        try:
            outcome = train_run(run_config, run_dir, resume=resume, overwrite=overwrite)
        except RunDirError as refusal:
            raise in_cli_terms(refusal) from None
        except TrainingInterrupted as stop:
            if is_main_process():
                restart = ["rnnkit", "train", *([str(config)] if config is not None else []),
                           "--out", str(run_dir), *(a for o in overrides for a in ("--set", o))]
                typer.echo(stopped_message(stop, run_dir, restart), err=True)
            raise typer.Exit(signal_exit_code(stop.signal_number)) from None
        if is_main_process():
            print_summary(outcome, time.monotonic() - started, run_config.task)


def stopped_message(stop: TrainingInterrupted, run_dir: Path, restart: list[str]) -> str:
    """One line: which signal stopped the run, what was saved, and the command to go on."""
    resume = shlex.join(["rnnkit", "train", "--out", str(run_dir), "--resume"])
    stopped = f"stopped by {stop.signal_name}"
    if stop.checkpoint is not None:
        return f"{stopped} after step {stop.step}: saved {stop.checkpoint}; resume with: {resume}"
    last = run_dir / "checkpoints" / "last"
    if last.is_dir():  # a second signal mid-step: the model may be half-updated, not saved
        return (f"{stopped} during step {stop.step + 1}: kept {last} of an earlier step; "
                f"resume with: {resume}")
    return (f"{stopped} before the first checkpoint, nothing to resume; start again with: "
            f"{shlex.join(restart)}")


def _worker_argv(config: Path | None, run_dir: Path, overrides: list[str], resume: bool,
                 overwrite: bool, progress: bool) -> list[str]:
    """``rnnkit train`` arguments for each data-parallel process (run directory fixed now)."""
    argv = [*(["--debug"] if Settings.debug else []), "train"]
    argv += [str(config)] if config is not None else []
    argv += ["--out", str(run_dir), *(arg for o in overrides for arg in ("--set", o))]
    argv += ["--resume"] * resume + ["--overwrite"] * overwrite
    return [*argv, "--progress" if progress else "--no-progress"]


def _format_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def print_summary(outcome: TrainOutcome, seconds: float, task: str) -> None:
    """Where the run ended, its best metric, the checkpoint and what to run next."""
    fit, run_dir = outcome.fit, outcome.run_dir
    minutes, secs = divmod(int(seconds), 60)
    typer.echo(f"Done: {fit.stop_reason} after {fit.global_step} steps "
               f"({fit.epoch} epochs) in {minutes}m{secs:02d}s.")
    if fit.best_metric is not None:
        typer.echo(f"Best {outcome.monitor}: {fit.best_metric:.4f} (step {fit.best_step})")
    which = checkpoint_label(outcome)
    typer.echo(f"Validation ({which}): {_format_metrics(outcome.valid_metrics)}")
    if outcome.test_metrics:
        typer.echo(f"Test ({which}): {_format_metrics(outcome.test_metrics)}")
    if outcome.last_metrics and outcome.last_metrics != outcome.valid_metrics:
        typer.echo(f"Last evaluation (step {fit.global_step}, not kept as best): "
                   f"{_format_metrics(outcome.last_metrics)}")
    typer.echo(f"Checkpoint: {outcome.checkpoint} (used by evaluate, predict, generate, export)")
    typer.echo(f"Peak memory: {peak_rss_mb():.0f} MB (resident, this process)")
    typer.echo("Next:")
    for command in TASKS[task].next_commands(run_dir):
        typer.echo(f"  {command}")


def checkpoint_label(outcome: TrainOutcome) -> str:
    """``best checkpoint, step 623``: which model the summary's metrics describe."""
    if outcome.checkpoint is None:
        return "no checkpoint"
    step = f", step {outcome.checkpoint_step}" if outcome.checkpoint_step is not None else ""
    return f"{outcome.checkpoint.name} checkpoint{step}"


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (``ru_maxrss`` is KB on Linux, bytes on
    macOS)."""
    import resource  # Unix only: importing it at the top would break the CLI on Windows

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
