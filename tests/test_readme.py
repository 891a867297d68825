"""The README's Python examples run as written (in order, sharing one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import rnnkit.nn as rnn

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 6


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repo = README.parent
    (tmp_path / "examples").symlink_to(repo / "examples")
    namespace: dict = {}
    torch.manual_seed(0)
    try:
        for index, block in enumerate(python_blocks()):
            exec(compile(block, f"README.md python block {index}", "exec"), namespace)
    finally:
        rnn.set_backend("auto")
    assert (tmp_path / "runs" / "lm_py" / "checkpoints" / "last").is_dir()
