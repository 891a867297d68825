"""A `rnnkit tune` worker SIGKILLed mid-trial: its trial is marked failed once its heartbeats
stop (one line says so), and a restarted worker carries the study on to the requested total."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import sys, time
from rnnkit.tasks import tune
optuna = tune._optuna()
storage = tune._storage(optuna, sys.argv[1], print, heartbeat=1, grace=2)
study = tune._open_study(optuna, storage, "crash", "min")
trial = tune._claim_trial(study, 3, tune._trial_slot_lock(sys.argv[1]), None)
tune._run_trial(study, trial, lambda trial: time.sleep(60))  # killed in here
"""


def test_a_killed_worker_s_trial_is_failed_and_a_restarted_worker_finishes(tmp_path):
    import optuna

    from rnnkit.tasks import tune

    url = f"sqlite:///{tmp_path / 'crash.db'}"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, url], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    running = optuna.trial.TrialState.RUNNING
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until its trial runs, then kill it mid-trial
        try:
            trials = optuna.load_study(study_name="crash", storage=url).trials
        except Exception:  # the study is not created yet
            trials = []
        if trials and trials[0].state == running:
            break
        time.sleep(0.1)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    time.sleep(3)  # past the grace period: the trial's heartbeats stopped
    lines: list[str] = []
    storage = tune._storage(optuna, url, lines.append, heartbeat=1, grace=2)
    study = tune._open_study(optuna, storage, "crash", "min")
    slot_lock = tune._trial_slot_lock(url)
    while (trial := tune._claim_trial(study, 3, slot_lock, None)) is not None:
        tune._run_trial(study, trial, lambda trial: trial.suggest_float("x", 0.0, 1.0))
    states = [t.state.name for t in optuna.load_study(study_name="crash", storage=url).trials]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"]
    assert lines == ["trial 0: failed (its worker stopped sending heartbeats for 2 s: killed "
                     "or lost)"]


def test_a_worker_killed_between_ask_and_its_first_heartbeat_is_failed_too(tmp_path):
    """Optuna's stale check sees only trials with a heartbeat; a trial asked for by a worker
    that died before recording one is failed once the grace period has passed."""
    import optuna

    from rnnkit.tasks import tune

    url = f"sqlite:///{tmp_path / 'crash.db'}"
    lines: list[str] = []
    storage = tune._storage(optuna, url, lines.append, heartbeat=1, grace=1)
    study = tune._open_study(optuna, storage, "crash", "min")
    study.ask()  # what a worker killed right after ask() leaves: RUNNING, no heartbeat
    slot_lock = tune._trial_slot_lock(url)
    trial = tune._claim_trial(study, 3, slot_lock, None)  # within the grace period: kept
    assert [t.state.name for t in study.get_trials()] == ["RUNNING", "RUNNING"]
    tune._run_trial(study, trial, lambda trial: 1.0)
    time.sleep(1.5)
    while (trial := tune._claim_trial(study, 3, slot_lock, None)) is not None:
        tune._run_trial(study, trial, lambda trial: 1.0)
    assert [t.state.name for t in study.get_trials()] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert lines == ["trial 0: failed (its worker stopped sending heartbeats for 1 s: killed "
                     "or lost)"]
