"""After training, the summary suggests the commands that fit the run's task; each task says
its own (no task names in the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from tests.cli.conftest import write

from rnnkit.cli.main import app
from rnnkit.tasks import TASKS

GENERATIVE = {"language_model", "conditional_generation"}


def command_names() -> set[str]:
    group = typer.main.get_group(app)
    return set(group.commands)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_suggests_commands_the_cli_has(task):
    commands = TASKS[task].next_commands(Path("runs/x"))
    # forecasting adds a backtest: the coverage of the intervals predict gives
    assert [c.split()[1] for c in commands[1:]] == (
        ["backtest", "evaluate", "export"] if task == "forecasting" else ["evaluate", "export"])
    assert all(c.startswith("rnnkit ") and " runs/x" in c for c in commands)
    assert {c.split()[1] for c in commands} <= command_names()
    first = "generate" if task in GENERATIVE else "predict"
    assert commands[0].split()[1] == first


def test_training_prints_the_tasks_next_commands(cli, tmp_path):
    config = write(tmp_path / "hello.yaml",
                   "task: language_model\ndata: {dataset: hello, seq_len: 8}\n"
                   "model: {hidden_size: 8, embedding_size: 4}\n"
                   "train: {batch_size: 4, max_steps: 1, eval_every: 1}\n")
    result = cli("train", config, "--out", tmp_path / "run", "--no-progress")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index("Next:")
    assert lines[start + 1:start + 4] == [
        f"  {command}" for command in TASKS["language_model"].next_commands(tmp_path / "run")]
    assert lines[start + 1] == f"  rnnkit generate {tmp_path / 'run'} --length 300"
