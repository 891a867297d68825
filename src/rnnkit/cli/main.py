"""The ``rnnkit`` command: train, evaluate, generate, predict, tune, export, backtest,
datasets.

Commands live in small modules as plain functions; this one assembles the typer app.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import rnnkit
from rnnkit.cli import analyze, backtest, datasets, inference, tools
from rnnkit.cli import train as train_module
from rnnkit.cli.errors import Settings
from rnnkit.cli.help_format import hide_flag_types
from rnnkit.train.distributed import exit_process, launched_by_torchrun

hide_flag_types()  # no `<bool>` beside on/off flags in --help
app = typer.Typer(
    name="rnnkit",
    help="Recurrent neural networks on PyTorch: train, evaluate, generate, predict, tune and "
    "export from one config file. Start with `rnnkit train` (no config: a char-level LSTM on "
    "bundled Shakespeare).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnkit {rnnkit.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Global options."""
    Settings.debug = debug


app.command()(train_module.train)
app.command()(inference.evaluate)
app.command()(inference.generate)
app.command()(inference.predict)
app.command()(tools.tune)
app.command()(tools.export)
app.command()(backtest.backtest)
app.command()(analyze.analyze)
app.command()(analyze.report)
app.add_typer(datasets.app, name="datasets")
app.add_typer(analyze.demo_app, name="demo")


def main() -> None:
    """Entry point of the ``rnnkit`` script and ``python -m rnnkit``."""
    if not launched_by_torchrun():
        app(prog_name="rnnkit")
        return
    try:  # a data-parallel rank: see exit_process for why it ends this way
        app(prog_name="rnnkit")
    except SystemExit as stop:
        exit_process(_exit_code(stop.code))
    exit_process(0)


def _exit_code(code: object) -> int:
    """The process exit status ``sys.exit(code)`` would give."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
