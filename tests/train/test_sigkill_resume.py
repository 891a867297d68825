"""SIGKILL at any moment, checkpoint writes included: a training process killed at seeded
random times, resumed each time, ends with exactly the weights of the uninterrupted run."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from tests.train.train_toys import RegressionSource, Regressor, quiet_config

from rnnkit.train import Trainer, load_checkpoint, seed_everything
from rnnkit.train.resume import find_resumable

STEPS = 240
KILLS = 5


def _train(run_dir: Path, started) -> None:
    """The child: train to STEPS with a checkpoint after every step (so most of a step's time
    is spent writing one and the kills land inside writes as often as between them)."""
    seed_everything(0)
    model = Regressor()
    config = quiet_config(max_steps=STEPS, checkpoint_every=1)
    trainer = Trainer(model, RegressionSource(), config, run_dir=run_dir)
    resume = any((run_dir / "checkpoints" / n).is_dir() for n in ("last", ".last.previous"))
    started.set()
    trainer.fit(resume=resume)


def _train_in_child(context, run_dir: Path, kill_after: float | None) -> int | None:
    """Train in a child process; SIGKILL it ``kill_after`` s after it starts (None: let it
    finish). A forkserver that imported torch once starts each child in milliseconds."""
    started = context.Event()
    child = context.Process(target=_train, args=(run_dir, started))
    child.start()
    assert started.wait(timeout=30)
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=60)
    return child.exitcode


# ~35-65 s here: every step fsyncs a checkpoint, on a shared 2-core machine. A 2-kill variant
# (24 steps, no fsync, reference without checkpoints) still took 30-80 s on the loaded machine
# (the forkserver's torch import alone 14 s), so no fast variant joins the default suite.
@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_ends_with_the_uninterrupted_weights(tmp_path):
    seed_everything(0)
    reference = Regressor()
    Trainer(reference, RegressionSource(), quiet_config(max_steps=STEPS, checkpoint_every=1),
            run_dir=tmp_path / "straight").fit()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "rnnkit.train", "tests.train.train_toys"])
    warm_up = context.Process(target=len, args=((),))  # starts the forkserver (imports)
    warm_up.start()
    warm_up.join(timeout=60)
    rng = random.Random(13)
    run_dir, steps_seen = tmp_path / "killed", []
    for _ in range(KILLS):
        code = _train_in_child(context, run_dir, kill_after=rng.uniform(0.05, 0.8))
        if code != -signal.SIGKILL:  # finished before the kill: nothing left to test
            break
        checkpoints = run_dir / "checkpoints"
        if checkpoints.is_dir() and any(p.name in ("last", ".last.previous")
                                        for p in checkpoints.iterdir()):
            point = find_resumable(checkpoints)  # every kill leaves a usable checkpoint
            assert point.damaged == ()
            steps_seen.append(point.step)
    assert steps_seen == sorted(steps_seen) and steps_seen[-1] < STEPS, steps_seen
    assert _train_in_child(context, run_dir, kill_after=None) == 0
    final = load_checkpoint(run_dir / "checkpoints" / "last")
    assert final.metadata["trainer"]["step"] == STEPS
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, final.model_state[name]), name
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if ".tmp-" in p.name]
    assert leftovers == []
