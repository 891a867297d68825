"""A real full disk, not an injected one: ``rnnkit train`` into a 2 MiB tmpfs that fills at the
second step's checkpoint. One line naming the checkpoint, exit 2, the first step's checkpoints
intact and loadable, no temporary file, no lock left; after the file system grows, the same
run resumes. Needs permission to mount (root): skipped elsewhere."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.cli.test_errors import assert_user_error

from rnnkit.train import load_checkpoint

CONFIG = ("task: language_model\ndata: {dataset: hello, seq_len: 16}\n"
          "model: {hidden_size: 64, embedding_size: 16}\n"
          "train: {batch_size: 8, eval_every: 1, checkpoint_every: 1}\n")


def _mount(directory: Path, size: str, remount: bool = False) -> bool:
    options = f"remount,size={size}" if remount else f"size={size}"
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture
def tiny_filesystem(tmp_path: Path):
    directory = tmp_path / "tiny"
    directory.mkdir()
    if os.geteuid() != 0 or not _mount(directory, "2m"):
        pytest.skip("mounting a tmpfs needs root (see bench/results/storage_faults.md)")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], capture_output=True, timeout=30)


def test_a_real_full_disk_keeps_the_previous_checkpoint(cli, tmp_path, tiny_filesystem):
    (tmp_path / "tiny.yaml").write_text(CONFIG)
    run = tiny_filesystem / "run"
    result = cli("train", "tiny.yaml", "--out", run, "--no-progress", "--set",
                 "train.max_steps=3")
    assert_user_error(result, f"error: cannot write checkpoint {run}/checkpoints/",
                      "no space left on the device (ENOSPC)")
    names = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    assert not [name for name in names if "tmp" in name or name.endswith(".rnnkit-lock")], names
    for name in ("best", "last"):
        assert load_checkpoint(run / "checkpoints" / name).trainer_state is not None
    assert _mount(tiny_filesystem, "16m", remount=True)
    result = cli("train", "--out", run, "--resume", "--no-progress", "--set",
                 "train.max_steps=3")
    assert result.exit_code == 0, result.output
    assert (run / "metrics.csv").read_text().splitlines()[-1].startswith("3,")
