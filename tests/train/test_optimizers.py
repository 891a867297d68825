"""Every optimizer (adamw, adam, rmsprop, sgd): built from the config, resumed bit for bit."""

from __future__ import annotations

import pytest
import torch
from tests.train.train_toys import (
    CarriedHiddenLoss,
    Recorder,
    SequenceModel,
    SequenceSource,
    quiet_config,
)

from rnnkit.train import Callback, Trainer, TrainingInterrupted, seed_everything
from rnnkit.train.config import TrainConfig
from rnnkit.train.optim import build_optimizer

SETTINGS = {
    "adamw": {"betas": (0.8, 0.99)},
    "adam": {"betas": (0.8, 0.99), "eps": 1e-7},
    "rmsprop": {"alpha": 0.9, "momentum": 0.5, "centered": True},
    "sgd": {"momentum": 0.9, "nesterov": True, "lr": 0.05},
}


class StopAt(Callback):
    """Stops the run after ``step`` as Ctrl-C would (save ``last``, raise)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, trainer, record):
        if record.step == self.step:
            raise KeyboardInterrupt


def _trainer(run_dir, optimizer: str, *callbacks) -> Trainer:
    seed_everything(1)
    settings = {"lr": 1e-2, "max_steps": 12, "eval_every": 4, "weight_decay": 0.01,
                "optimizer": optimizer, **SETTINGS[optimizer]}
    # 5 batches an epoch: the stop at step 7 falls mid-epoch, between checkpoints
    return Trainer(SequenceModel(), SequenceSource(batches=5), quiet_config(**settings),
                   loss_fn=CarriedHiddenLoss(), run_dir=run_dir, callbacks=list(callbacks))


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "rmsprop", "sgd"])
def test_stop_and_resume_reproduces_the_run_bit_for_bit(tmp_path, optimizer):
    full = Recorder()
    full_trainer = _trainer(tmp_path / "full", optimizer, full)
    full_trainer.fit()
    with pytest.raises(TrainingInterrupted):
        _trainer(tmp_path / "split", optimizer, StopAt(7)).fit()
    second = Recorder()
    resumed = _trainer(tmp_path / "split", optimizer, second)
    resumed.fit(resume=True)
    assert type(resumed.optimizer).__name__.lower() == optimizer
    assert second.losses == full.losses[7:]  # exact float equality, step by step
    for a, b in zip(full_trainer.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_optimizers_differ_and_learn():
    """Each optimizer takes its own path: the first-step updates are not all the same."""
    updates = {}
    for name in SETTINGS:
        seed_everything(0)
        model = torch.nn.Linear(3, 1)
        optimizer = build_optimizer(model, quiet_config(optimizer=name, max_steps=1,
                                                        **SETTINGS[name]))
        before = model.weight.detach().clone()
        model(torch.ones(4, 3)).pow(2).mean().backward()
        optimizer.step()
        updates[name] = (model.weight.detach() - before).flatten().tolist()
    assert len({tuple(round(u, 9) for u in update) for update in updates.values()}) == 4


def test_settings_reach_the_optimizer_and_decay_only_matrices():
    model = torch.nn.Linear(3, 2)
    sgd = build_optimizer(model, quiet_config(optimizer="sgd", momentum=0.9, nesterov=True,
                                              weight_decay=0.1, max_steps=1))
    assert isinstance(sgd, torch.optim.SGD)
    weights, biases = sgd.param_groups
    assert (weights["momentum"], weights["nesterov"], weights["weight_decay"]) == (0.9, True, 0.1)
    assert biases["weight_decay"] == 0.0
    rms = build_optimizer(model, quiet_config(optimizer="rmsprop", alpha=0.95, max_steps=1))
    assert isinstance(rms, torch.optim.RMSprop) and rms.param_groups[0]["alpha"] == 0.95


def test_a_model_can_exempt_matrices_from_weight_decay():
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)
            self.gain = torch.nn.Parameter(torch.ones(2, 2))  # means something at 1, not 0

        def no_weight_decay(self):
            return {"gain"}

    model = Scaled()
    weights, others = build_optimizer(model, quiet_config(weight_decay=0.1, max_steps=1)
                                      ).param_groups
    assert [id(p) for p in weights["params"]] == [id(model.linear.weight)]
    assert {id(p) for p in others["params"]} == {id(model.linear.bias), id(model.gain)}
    assert (weights["weight_decay"], others["weight_decay"]) == (0.1, 0.0)


@pytest.mark.parametrize(("settings", "message"), [
    ({"optimizer": "lbfgs"}, "TrainConfig.optimizer: expected one of adamw, adam, rmsprop, sgd"),
    ({"momentum": 1.0}, "TrainConfig.momentum: expected a number in [0, 1), got 1.0"),
    ({"optimizer": "sgd", "nesterov": True}, "expected momentum > 0 with nesterov=True"),
    ({"alpha": -0.1}, "TrainConfig.alpha: expected a number in [0, 1)"),
])
def test_bad_optimizer_settings_name_the_field(settings, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        TrainConfig(max_steps=1, **settings)


@pytest.mark.parametrize(("before", "after"), [("adamw", "sgd"), ("sgd", "adam"),
                                               ("adam", "rmsprop"), ("rmsprop", "adamw")])
def test_resume_with_another_optimizer_warns_and_starts_its_state_afresh(tmp_path, before,
                                                                        after):
    with pytest.raises(TrainingInterrupted):
        _trainer(tmp_path, before, StopAt(7)).fit()
    resumed_records = Recorder()
    resumed = _trainer(tmp_path, after, resumed_records)
    with pytest.warns(RuntimeWarning, match=f"trained with optimizer '{before}', this run "
                                            f"uses '{after}'; its state"):
        resumed.fit(resume=True)
    assert type(resumed.optimizer).__name__.lower() == after
    assert [record.step for record in resumed_records.records] == [8, 9, 10, 11, 12]
    assert all(torch.isfinite(torch.tensor(r.loss)) for r in resumed_records.records)
    state = next(iter(resumed.optimizer.state.values()))
    if after in ("adam", "adamw", "rmsprop"):  # moments counted from the resume, not step 0
        assert int(state["step"]) == 5
    else:
        assert "momentum_buffer" in state


class ExemptHead(SequenceModel):
    def no_weight_decay(self):
        return {"head.weight"}


def test_resume_with_other_parameter_groups_warns_and_starts_the_state_afresh(tmp_path):
    with pytest.raises(TrainingInterrupted):
        _trainer(tmp_path, "adamw", StopAt(7)).fit()
    seed_everything(1)
    records = Recorder()
    resumed = Trainer(ExemptHead(), SequenceSource(batches=5),
                      quiet_config(lr=1e-2, max_steps=12, eval_every=4, weight_decay=0.01,
                                   **SETTINGS["adamw"]),
                      loss_fn=CarriedHiddenLoss(), run_dir=tmp_path, callbacks=[records])
    with pytest.warns(RuntimeWarning, match=r"groups its parameters for the optimizer as "
                                            r"\[3, 3\], this run as \[2, 4\]"):
        resumed.fit(resume=True)
    assert [record.step for record in records.records] == [8, 9, 10, 11, 12]
    assert int(next(iter(resumed.optimizer.state.values()))["step"]) == 5

