"""The ``rnnkit`` command: train, evaluate, generate, predict, tune, export, backtest,
datasets.

Commands live in small modules; this one assembles the typer app. Commands of
:mod:`rnnkit.cli.analyze` (``analyze``, ``report``, ``demo``) are added when that module exists.
"""

from __future__ import annotations

import sys

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
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
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
app.add_typer(datasets.app, name="datasets")


# ``analyze``, ``report`` and ``demo`` are a Typer app of their own; they join the top level.
app.registered_commands += analyze.app.registered_commands
app.registered_groups += analyze.app.registered_groups


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
