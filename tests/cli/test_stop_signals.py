"""A real `rnnkit train` process (its steps slowed): it locks its run directory while it
trains, and SIGTERM stops it like Ctrl-C (last saved, one line naming the signal and the
resume command, exit 143); the resumed run ends exactly where the uninterrupted one does."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from tests.cli.conftest import write
from tests.cli.test_errors import assert_user_error
from tests.cli.test_train_tune import losses

from rnnkit.cli.errors import handle_errors
from rnnkit.cli.train import stopped_message
from rnnkit.tasks.run_lock import LOCK_FILE
from rnnkit.train import TrainingInterrupted, read_metadata
from rnnkit.train.interrupt import StopSignal

ROOT = Path(__file__).resolve().parents[2]
STEPS = 60
# `rnnkit train` with every step slowed by 50 ms, so that on any machine the signal finds the
# run in the middle (the losses are unchanged; only the signalled process is slowed).
SLOW_RNNKIT = """
import sys, time
from rnnkit.train.trainer import Trainer
step = Trainer._step
def slow_step(self, batch):
    time.sleep(0.05)
    return step(self, batch)
Trainer._step = slow_step
from rnnkit.cli.main import main
main()
"""
CONFIG = ("task: language_model\ndata: {dataset: hello, seq_len: 8}\n"
          "model: {hidden_size: 8, embedding_size: 4}\ntrain: {batch_size: 4, eval_every: 20}\n")


def start_training(tmp_path: Path, config: Path, out: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
           "RNNKIT_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_RNNKIT, "train", str(config), "--out", out, "--no-progress",
         "--set", f"train.max_steps={STEPS}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_steps(process: subprocess.Popen, metrics: Path, steps: int) -> None:
    """Block until ``metrics`` logs ``steps`` steps (the run is training), at most 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"training ended before the test acted: {process.stderr.read()}")
        if metrics.is_file():
            with open(metrics, newline="") as handle:
                if len(list(csv.DictReader(handle))) >= steps:
                    return
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"{metrics} did not reach {steps} steps within 60 s")


def test_sigterm_saves_last_exits_143_and_resume_matches_the_uninterrupted_run(cli, tmp_path):
    config = write(tmp_path / "hello.yaml", CONFIG)
    process = start_training(tmp_path, config, "split")
    try:
        wait_for_steps(process, tmp_path / "split/metrics.csv", 2)
        # A second train into the live run is refused, naming the process and host.
        for flags in ((), ("--resume",), ("--overwrite",)):
            refused = cli("train", config, "--out", "split", *flags, "--no-progress")
            assert_user_error(refused, f"split is in use: process {process.pid} on host "
                              f"{socket.gethostname()}")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 143, stderr
    last_line = stderr.strip().splitlines()[-1]
    stopped = re.fullmatch(r"stopped by SIGTERM after step (\d+): saved split/checkpoints/last; "
                           r"resume with: rnnkit train --out split --resume", last_line)
    assert stopped, stderr
    step = int(stopped.group(1))
    assert 2 <= step < STEPS
    saved = read_metadata(tmp_path / "split/checkpoints/last")["trainer"]
    assert (saved["step"], saved["stop_reason"]) == (step, "interrupted")
    assert not (tmp_path / "split" / LOCK_FILE).exists()  # released on the way out

    resumed = cli("train", "--out", "split", "--resume", "--no-progress")  # the printed command
    assert resumed.exit_code == 0, resumed.output
    full = cli("train", config, "--out", "full", "--no-progress",
               "--set", f"train.max_steps={STEPS}")
    assert full.exit_code == 0, full.output

    assert len(losses("split")) == STEPS
    assert losses("split") == losses("full")  # exact, step by step, across the stop
    summaries = [json.loads(Path(run, "summary.json").read_text()) for run in ("split", "full")]
    assert summaries[0]["steps"] == STEPS
    for key in ("valid_metrics", "best_metric", "best_step"):
        assert summaries[0][key] == summaries[1][key], key


@pytest.mark.parametrize(("raised", "code", "name"), [
    (StopSignal(signal.SIGHUP), 129, "SIGHUP"), (StopSignal(signal.SIGTERM), 143, "SIGTERM"),
    (KeyboardInterrupt(), 130, "SIGINT")])
def test_a_stop_signal_outside_training_exits_with_128_plus_its_number(capsys, raised, code,
                                                                        name):
    @handle_errors
    def command() -> None:
        raise raised

    with pytest.raises(typer.Exit) as stopped:
        command()
    assert stopped.value.exit_code == code
    assert capsys.readouterr().err == f"error: stopped by {name}\n"


def test_the_stop_message_says_what_was_kept_and_how_to_go_on(tmp_path):
    run = tmp_path / "my run"
    restart = ["rnnkit", "train", "c.yaml", "--out", str(run), "--set", "train.lr=0.1"]
    mid_step = TrainingInterrupted(signal.SIGINT, 7, None)
    assert stopped_message(mid_step, run, restart) == (
        f"stopped by SIGINT before the first checkpoint, nothing to resume; start again with: "
        f"rnnkit train c.yaml --out '{run}' --set train.lr=0.1")
    (run / "checkpoints" / "last").mkdir(parents=True)
    assert stopped_message(mid_step, run, restart) == (
        f"stopped by SIGINT during step 8: kept {run}/checkpoints/last of an earlier step; "
        f"resume with: rnnkit train --out '{run}' --resume")
    saved = TrainingInterrupted(signal.SIGHUP, 7, run / "checkpoints" / "last")
    assert stopped_message(saved, run, restart) == (
        f"stopped by SIGHUP after step 7: saved {run}/checkpoints/last; "
        f"resume with: rnnkit train --out '{run}' --resume")
