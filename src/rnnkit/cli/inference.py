"""``rnnkit evaluate``, ``generate`` and ``predict``: use a trained run directory."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnkit.cli.errors import handle_errors
from rnnkit.cli.predict_inputs import read_inputs
from rnnkit.data.datasets.refs import resolve_data_path
from rnnkit.tasks import TASKS, load_run
from rnnkit.train.state_io import finite_json

RunDirArgument = Annotated[Path, typer.Argument(help="A run directory made by `rnnkit train`.",
                                               show_default=False)]


@handle_errors
def evaluate(
    run_dir: RunDirArgument,
    data_text: Annotated[str, typer.Option(
        "--data", "-d", metavar="FILE|dataset:NAME:SPLIT",
        help="File in the same format as training, or a bundled sample's split, e.g. "
        "dataset:dates:test (see `rnnkit datasets path NAME`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    checkpoint: Annotated[str, typer.Option(
        metavar="best|last", help="Checkpoint to use: best or last.")] = "best",
) -> None:
    """Score the run's model on a data file with the task's metrics."""
    data = resolve_data_path(data_text)
    if not data.is_file():
        raise FileNotFoundError(f"--data: file not found: {data}")
    run = load_run(run_dir, checkpoint)
    # A bar only on a terminal: piped or captured stderr (CI logs) would keep its redraws.
    metrics = run.evaluate(data, progress=not as_json and sys.stderr.isatty())
    if as_json:  # strict JSON: a NaN or infinite metric is null (documented in the README)
        typer.echo(json.dumps(finite_json(metrics), allow_nan=False))
        return
    width = max(len(name) for name in metrics)
    for name, value in metrics.items():
        typer.echo(f"{name:<{width}}  {value:.4f}")


@handle_errors
def generate(
    run_dir: RunDirArgument,
    prime: Annotated[str | None, typer.Option(
        "--prime", "-p", help="Text to start from.")] = None,
    length: Annotated[int, typer.Option(
        "--length", "-n", min=0, help="Tokens to generate.")] = 500,
    temperature: Annotated[float, typer.Option(
        "--temperature", "-t", min=0.0, help="0 is greedy; higher is more varied.")] = 0.8,
    top_k: Annotated[int | None, typer.Option(
        "--top-k", min=1, help="Sample among the k most likely.")] = None,
    top_p: Annotated[float | None, typer.Option(
        "--top-p", min=0.0, max=1.0, help="Nucleus sampling.")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Make sampling reproducible.")] = None,
    condition: Annotated[str | None, typer.Option(
        "--condition", "-c", help="Class to condition on (conditional_generation runs).")] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="Number of samples.")] = 1,
) -> None:
    """Sample text from a language model or a conditional generator."""
    run = load_run(run_dir)
    for index in range(count):
        text = run.generate(prime=prime, length=length, condition=condition,
                            temperature=temperature, top_k=top_k, top_p=top_p,
                            seed=None if seed is None else seed + index)
        typer.echo(text)


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"p_{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            flat[key] = " ".join(map(str, value))
        else:
            flat[key] = value
    return flat


def write_rows(rows: list[dict[str, Any]], handle, output_format: str) -> None:
    """Rows as JSON lines or CSV (lists joined by spaces, probabilities as ``p_<label>``)."""
    if output_format == "jsonl":
        for row in rows:
            handle.write(json.dumps(finite_json(row), ensure_ascii=False, allow_nan=False)
                         + "\n")
        return
    flat = [_flatten(row) for row in rows]
    fields = list(dict.fromkeys(key for row in flat for key in row))
    writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)


def write_to_stdout(rows: list[dict[str, Any]], output_format: str) -> None:
    """Write ``rows`` to stdout; a reader that went away (``| head``) ends the command
    quietly with success, as ``cat`` and ``grep`` do, rather than with a traceback."""
    try:
        write_rows(rows, sys.stdout, output_format)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit, which would fail the same way: point it at
        # /dev/null first (the recipe of Python's signal documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None


def _predict_rows(run: Any, inputs: list[Any], samples: int, beam_size: int | None,
                  n_best: int, calibration_window: int | None = None) -> list[dict[str, Any]]:
    """``run``'s predictions with the task-specific options, refused for tasks whose
    ``predict_options`` lack them."""
    for flag, option, given in (("--samples", "samples", samples),
                                ("--calibration-window", "calibration_window",
                                 calibration_window is not None),
                                ("--beam-size", "beam_size", beam_size is not None),
                                ("--n-best", "n_best", n_best != 1)):
        if given and option not in run.task.predict_options:
            wanted = " or ".join(name for name, task_class in TASKS.items()
                                 if option in task_class.predict_options)
            raise ValueError(f"{flag}: only {wanted} runs take it; this run's task is "
                             f"{run.task.name}")
    if "calibration_window" in run.task.predict_options:
        return run.task.predict(run.model, inputs, samples=samples,
                                calibration_window=calibration_window)
    if "beam_size" in run.task.predict_options:
        beam = beam_size if beam_size is not None else run.config.model.beam_size
        if n_best > beam:
            raise ValueError(f"--n-best: expected at most the beam width (--beam-size {beam}), "
                             f"got {n_best}")
        return run.task.predict(run.model, inputs, beam_size=beam, n_best=n_best)
    return run.predict(inputs)


@handle_errors
def predict(
    run_dir: RunDirArgument,
    source: Annotated[str, typer.Option(
        "--input", "-i", metavar="FILE|-|dataset:NAME:SPLIT",
        help="Input in the run's format (a CSV/TSV gives its text column, a CoNLL file its "
        "tokens, a pairs TSV its sources, else one example per line; a series file for "
        "forecasting), - for stdin, or a bundled sample's split.")] = "-",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Output file (default stdout).")] = None,
    output_format: Annotated[str | None, typer.Option(
        "--format", "-f", metavar="csv|jsonl",
        help="csv or jsonl (default: from --output, else jsonl).")] = None,
    samples: Annotated[int, typer.Option(
        "--samples", min=0,
        help="Forecasting: also write N sample paths per series (<target>_samples, one value "
        "per path at each step).")] = 0,
    calibration_window: Annotated[int | None, typer.Option(
        "--calibration-window", min=0, show_default=False,
        help="Forecasting: widen the intervals by the factor of the input's last N forecasts "
        "whose horizons ended inside it (default: the run's data.calibration_window; 0: the "
        "validation factor).")] = None,
    beam_size: Annotated[int | None, typer.Option(
        "--beam-size", min=1, show_default=False,
        help="Seq2seq: beam width K (default: the run's model.beam_size; 1 is greedy).")] = None,
    n_best: Annotated[int, typer.Option(
        "--n-best", min=1,
        help="Seq2seq: the N best outputs per source, one row each with rank and score "
        "(N <= --beam-size).")] = 1,
) -> None:
    """Batch inference: labels with probabilities, tags, translations or forecasts."""
    if output_format is None:
        output_format = "csv" if output is not None and output.suffix == ".csv" else "jsonl"
    if output_format not in ("csv", "jsonl"):
        raise ValueError(f"--format: expected csv or jsonl, got {output_format!r}")
    run = load_run(run_dir)
    inputs = read_inputs(run, source)
    if not inputs:
        raise ValueError(f"--input: no examples in {'<stdin>' if source == '-' else source}")
    rows = _predict_rows(run, inputs, samples, beam_size, n_best, calibration_window)
    if output is None:
        write_to_stdout(rows, output_format)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        write_rows(rows, handle, output_format)
    typer.echo(f"Wrote {len(rows)} rows to {output}", err=True)
