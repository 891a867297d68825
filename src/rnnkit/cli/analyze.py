"""``rnnkit analyze``, ``rnnkit report`` and ``rnnkit demo vanishing-gradients``.

:mod:`rnnkit.cli.main` registers :func:`analyze` and :func:`report` as commands and
:data:`demo_app` as the ``demo`` group. The analysis modules are imported inside the commands:
they bring matplotlib, which every other command would otherwise pay for at start-up.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.errors import handle_errors

demo_app = typer.Typer(help="Demonstrations that run on synthetic data and write a report.",
                       no_args_is_help=True)


RunOrStudyArgument = Annotated[Path, typer.Argument(
    help="A run directory made by `rnnkit train`, or a study directory made by `rnnkit tune` "
    "(tuning report).")]


class What(str, Enum):
    gradient_flow = "gradient-flow"
    hidden = "hidden"
    attention = "attention"


def _print_rows(rows: list[dict]) -> None:
    """A plain aligned table (numbers to 4 significant digits)."""
    if not rows:
        return
    columns = list(rows[0])
    cells = [[f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns]
             for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for line in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))


@handle_errors
def analyze(
    run_dir: RunOrStudyArgument,
    data: Annotated[Path | None, typer.Option(
        "--data",
        help="Data file in the run's format (default: the run's validation, test or training "
        "file).")] = None,
    what: Annotated[What, typer.Option("--what", help="What to analyse.")] = What.gradient_flow,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Where to write plots (default: DIR/analysis).")] = None,
) -> None:
    """Print gradient flow through time, hidden-state statistics or attention, and write plots."""
    from rnnkit.analysis.cli_views import VIEWS

    out_dir = out or run_dir / "analysis"
    rows, written = VIEWS[what.value](run_dir, data, out_dir)
    _print_rows(rows)
    for path in written:
        typer.echo(f"wrote {path}")


@handle_errors
def report(
    run_dir: RunOrStudyArgument,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Data file for the sample sections.")] = None,
) -> None:
    """Write DIR/report.html: one self-contained page (plots embedded), plus PNGs; for a tuning
    study, the trials, the metric against each hyperparameter and the best trial's curves."""
    from rnnkit.analysis.report import build_report

    # A bar per section only on a terminal; piped or logged stderr stays clean.
    path = build_report(run_dir, data, progress=sys.stderr.isatty())
    typer.echo(f"wrote {path}")


@demo_app.command("vanishing-gradients")
@handle_errors
def vanishing_gradients(
    quick: Annotated[bool, typer.Option(
        "--quick", help="A < 30 s version (two delays, few steps).")] = False,
    out: Annotated[Path, typer.Option(
        "--out", help="Directory for results.json, PNGs and report.html.")] = Path(
        "runs/vanishing-gradients"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of every run.")] = 0,
) -> None:
    """Train RNN, LSTM and GRU on recall-after-delay tasks; show why the RNN forgets."""
    from rnnkit.analysis.demo import DemoConfig, run_demo, save_results
    from rnnkit.analysis.demo_report import COMMAND, write_demo_report

    config = replace(DemoConfig.quick() if quick else DemoConfig(), seed=seed)
    result = run_demo(config, progress=typer.echo)
    save_results(result, out)
    command = f"{COMMAND}{' --quick' if quick else ''} --seed {seed} --out {out}"
    path = write_demo_report(result, out, command)
    for line in result.summary_lines():
        typer.echo(line)
    typer.echo(f"wrote {path}")
