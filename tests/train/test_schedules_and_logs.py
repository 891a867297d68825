"""Learning-rate curves, CSV and TensorBoard logs, configuration checks, seeding, devices."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.train.train_toys import FailingLoss, Recorder, RegressionSource, Regressor, quiet_config

from rnnkit.train import (
    LRSchedule,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    deterministic_mode,
    resolve_device,
    seed_everything,
)
from rnnkit.train.seeding import capture_rng_state, restore_rng_state


def _lrs(schedule: LRSchedule, steps: int) -> list[float]:
    return [schedule.apply(step) for step in range(steps)]


def _schedule(**settings) -> LRSchedule:
    optimizer = torch.optim.AdamW(Regressor().parameters())
    config = TrainConfig(**settings)
    total = config.max_steps
    return LRSchedule(optimizer, config, total)


def test_constant_schedule_with_linear_warmup():
    lrs = _lrs(_schedule(lr=0.1, warmup_steps=4, max_steps=8), 8)
    assert lrs == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1, 0.1])


def test_cosine_schedule_with_warmup_and_floor():
    lrs = _lrs(_schedule(lr=0.1, schedule="cosine", warmup_steps=2, min_lr=0.01, max_steps=10), 11)
    assert lrs[:3] == pytest.approx([0.05, 0.1, 0.1])
    # halfway through the 8 decay steps: min + (base - min) * (1 + cos(pi / 2)) / 2
    assert lrs[6] == pytest.approx(0.055)
    assert lrs[9] == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi * 7 / 8)) / 2)
    assert lrs[10] == pytest.approx(0.01)  # past the horizon it stays at the floor
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(1e-5, 1.0),
    min_fraction=st.floats(0.0, 0.9),
    max_steps=st.integers(2, 300),
    warmup_fraction=st.floats(0.0, 0.9),
    schedule=st.sampled_from(["constant", "cosine"]),
)
def test_schedules_rise_during_warmup_then_never_rise(
    lr, min_fraction, max_steps, warmup_fraction, schedule
):
    warmup = min(int(warmup_fraction * max_steps), max_steps - 1)
    lrs = _lrs(
        _schedule(
            lr=lr,
            min_lr=lr * min_fraction,
            max_steps=max_steps,
            warmup_steps=warmup,
            schedule=schedule,
        ),
        max_steps,
    )
    tolerance = 1e-12
    assert all(0 < value <= lr * (1 + tolerance) for value in lrs)
    peak = max(warmup - 1, 0)  # warm-up reaches the full lr on its last step, never lr = 0
    assert all(a < b for a, b in itertools.pairwise(lrs[:warmup]))
    assert all(a >= b * (1 - tolerance) for a, b in itertools.pairwise(lrs[peak:]))
    assert lrs[peak] == pytest.approx(lr)
    if schedule == "cosine":
        assert lrs[-1] >= lr * min_fraction * (1 - tolerance)


def test_plateau_schedule_reduces_after_patience_and_respects_min_lr():
    schedule = _schedule(
        lr=0.1,
        schedule="plateau",
        plateau_patience=2,
        plateau_factor=0.5,
        min_lr=0.03,
        max_steps=100,
    )
    observed = []
    for improved in [True, False, False, False, True, False, False, False, False, False, False]:
        schedule.observe(improved)
        observed.append(schedule.apply(50))
    assert observed == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03]
    )
    state = schedule.state_dict()
    fresh = _schedule(lr=0.1, schedule="plateau", plateau_patience=2, min_lr=0.03, max_steps=100)
    fresh.load_state_dict(json.loads(json.dumps(state)))
    assert fresh.apply(50) == schedule.apply(50)


def test_plateau_schedule_inside_the_trainer_follows_the_monitored_metric():
    seed_everything(0)
    recorder = Recorder()
    Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(lr=0.1, schedule="plateau", plateau_patience=1, max_steps=7, eval_every=1),
        evaluate=lambda model: {"valid_loss": 1.0},  # never improves after the first
        callbacks=[recorder],
    ).fit()
    # evaluation k (after step k) is the (k-1)th without improvement; >1 of them halves the lr.
    assert [r.lr for r in recorder.records] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    )


def test_cosine_horizon_comes_from_epochs_when_steps_are_unset():
    seed_everything(0)
    recorder = Recorder()
    source = RegressionSource(batches=4)
    Trainer(
        Regressor(),
        source,
        quiet_config(lr=0.1, schedule="cosine", max_epochs=2),
        callbacks=[recorder],
    ).fit()
    assert len(recorder.records) == 8
    assert recorder.records[-1].lr == pytest.approx(0.05 * (1 + math.cos(math.pi * 7 / 8)))


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_log_has_train_and_eval_columns(tmp_path):
    seed_everything(0)
    recorder = Recorder()
    Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=7, eval_every=3, log_every=2),
        evaluate=lambda model: {"valid_loss": 0.25, "accuracy": 0.5, "loss": 9.0},
        monitor="valid_loss",
        run_dir=tmp_path,
        callbacks=[recorder],
    ).fit()
    rows = _read_csv(tmp_path / "metrics.csv")
    columns = ["step", "epoch", "lr", "loss", "grad_norm", "elapsed_s", "epoch_time_s",
               "valid_loss", "accuracy", "eval_loss"]
    assert list(rows[0]) == columns
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6, 7]
    assert [r["valid_loss"] for r in rows] == ["", "0.25", "", "0.25", "0.25"]
    by_step = {r.step: r for r in recorder.records}
    for row in rows:
        record = by_step[int(row["step"])]
        assert float(row["loss"]) == record.loss  # repr round-trips floats exactly
        assert float(row["grad_norm"]) == record.grad_norm
        assert float(row["lr"]) == record.lr
        assert int(row["epoch"]) == record.epoch


class _StepClock:
    """Stands in for the trainer's ``time``: each ``monotonic()`` call is one second later."""

    def __init__(self) -> None:
        self.now = -1.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def test_csv_log_has_wall_clock_per_row_and_per_epoch(tmp_path, monkeypatch):
    import rnnkit.train.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "time", _StepClock())
    seed_everything(0)
    Trainer(Regressor(), RegressionSource(batches=3), quiet_config(max_epochs=2, log_every=2),
            run_dir=tmp_path).fit()
    rows = _read_csv(tmp_path / "metrics.csv")
    # log_every=2 gives steps 2, 4, 6; an epoch's last step (3, 6) always has a row.
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6]
    assert [float(r["elapsed_s"]) for r in rows] == [2.0, 3.0, 4.0, 6.0]
    assert [r["epoch_time_s"] for r in rows] == ["", "3.0", "", "3.0"]


def test_csv_log_epoch_time_of_a_run_resumed_mid_epoch(tmp_path, monkeypatch):
    import rnnkit.train.trainer as trainer_module

    def trainer(max_steps):
        seed_everything(0)
        config = quiet_config(max_steps=max_steps, checkpoint_every=1)
        return Trainer(Regressor(), RegressionSource(batches=3), config, run_dir=tmp_path)

    monkeypatch.setattr(trainer_module, "time", _StepClock())
    trainer(4).fit()  # epoch 0 ends at step 3 (3 s); step 4 is epoch 1's first
    monkeypatch.setattr(trainer_module, "time", _StepClock())
    trainer(6).fit(resume=True)  # clock restarts: elapsed 4 s restored, +1 s per step
    rows = _read_csv(tmp_path / "metrics.csv")
    assert [float(r["elapsed_s"]) for r in rows] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [r["epoch_time_s"] for r in rows] == ["", "", "3.0", "", "", "3.0"]


def test_csv_log_of_a_resumed_run_has_each_step_once(tmp_path):
    def trainer(loss_fn=None):
        seed_everything(0)
        config = quiet_config(max_steps=9, checkpoint_every=2)
        return Trainer(Regressor(), RegressionSource(), config, loss_fn=loss_fn, run_dir=tmp_path)

    with pytest.raises(NonFiniteLossError):
        trainer(FailingLoss(6, float("inf"))).fit()
    assert [int(r["step"]) for r in _read_csv(tmp_path / "metrics.csv")] == [1, 2, 3, 4, 5]
    trainer().fit(resume=True)  # resumes from step 4; step 5 is trained again
    assert [int(r["step"]) for r in _read_csv(tmp_path / "metrics.csv")] == list(range(1, 10))


def test_tensorboard_events_are_written(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    seed_everything(0)
    Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=4, eval_every=2, tensorboard=True),
        evaluate=lambda model: {"valid_loss": 0.5},
        run_dir=tmp_path,
    ).fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("eval/valid_loss")] == [2, 4]
    assert {"train/lr", "train/grad_norm"} <= set(events.Tags()["scalars"])


@pytest.mark.parametrize(
    ("settings", "error", "field"),
    [
        ({"lr": 0}, ValueError, "lr"),
        ({"lr": "fast"}, TypeError, "lr"),
        ({"max_steps": True}, TypeError, "max_steps"),
        ({"max_steps": 0}, ValueError, "max_steps"),
        ({"schedule": "linear"}, ValueError, "schedule"),
        ({"clip_value": 0.5}, ValueError, "clip_value"),
        ({"clip_norm": -1.0}, ValueError, "clip_norm"),
        ({"betas": (1.0, 0.9)}, ValueError, "betas"),
        ({"betas": (0.9,)}, TypeError, "betas"),
        ({"warmup_steps": 10}, ValueError, "warmup_steps"),
        ({"patience": 0}, ValueError, "patience"),
        ({"max_time": float("nan")}, ValueError, "max_time"),
        ({"min_lr": 0.5}, ValueError, "min_lr"),
        ({"plateau_factor": 1.5}, ValueError, "plateau_factor"),
        ({"max_steps": None}, ValueError, "max_steps"),
        ({"max_steps": None, "max_time": 1.0, "schedule": "cosine"}, ValueError, "schedule"),
        ({"deterministic": "yes"}, TypeError, "deterministic"),
    ],
)
def test_config_validation_names_the_field(settings, error, field):
    values = {"max_steps": 10, "lr": 0.01}
    values.update(settings)
    with pytest.raises(error, match=rf"TrainConfig\.{field}:"):
        TrainConfig(**values)


def test_config_accepts_lists_for_betas_and_round_trips_through_json():
    config = TrainConfig(max_steps=5, betas=[0.8, 0.99], max_time=2, clip_norm=None, clip_value=1)
    assert config.betas == (0.8, 0.99)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["betas"] == [0.8, 0.99]
    assert TrainConfig.from_dict(data) == config


def test_config_from_dict_suggests_the_closest_field():
    with pytest.raises(ValueError, match=r"unknown field 'max_step' \(did you mean 'max_steps'"):
        TrainConfig.from_dict({"max_step": 3})


def test_seed_everything_seeds_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_rng_state_capture_and_restore():
    seed_everything(7)
    state = capture_rng_state()
    expected = (random.random(), np.random.normal(), torch.randn(2))
    restore_rng_state(state)
    assert random.random() == expected[0]
    assert np.random.normal() == expected[1]
    assert torch.equal(torch.randn(2), expected[2])


def test_deterministic_mode_is_scoped():
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_mode(True):
        assert torch.are_deterministic_algorithms_enabled()
    assert not torch.are_deterministic_algorithms_enabled()


def test_deterministic_training_runs_and_repeats():
    def run():
        seed_everything(0)
        recorder = Recorder()
        config = quiet_config(max_steps=5, deterministic=True)
        Trainer(Regressor(), RegressionSource(), config, callbacks=[recorder]).fit()
        return recorder.losses

    assert run() == run()


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu")
    with pytest.raises(TypeError, match="device"):
        resolve_device(0)  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
