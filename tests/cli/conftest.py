"""Shared fixtures: a CliRunner bound to the rnnkit app, run inside a temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnnkit.cli.errors import Settings
from rnnkit.cli.main import app


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable:
    """``cli(*args, input=None)`` → typer Result, cwd = ``tmp_path``; asserts nothing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        Settings.debug = False
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return it."""
    path.write_text(text, encoding="utf-8")
    return path
