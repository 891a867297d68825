"""One line per evaluation when stderr is not a terminal (logs, CI, notebooks), and the
model's parameter count at the start."""

from __future__ import annotations

import io

import torch

from rnnkit.train import TrainConfig, Trainer
from rnnkit.train.loggers import EvalLines, clock, model_summary


class Toy:
    """Four batches of a linear regression an epoch."""

    def __len__(self) -> int:
        return 4

    def iter_epoch(self, epoch: int):
        generator = torch.Generator().manual_seed(epoch)
        for _ in range(4):
            x = torch.randn(8, 3, generator=generator)
            yield x, x.sum(dim=1, keepdim=True)


def loss(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def test_a_line_per_evaluation_with_metrics_elapsed_and_eta():
    torch.manual_seed(0)
    model, out = torch.nn.Linear(3, 1), io.StringIO()
    trainer = Trainer(model, Toy(), TrainConfig(max_epochs=2, progress=False), loss_fn=loss,
                      evaluate=lambda m: {"valid_loss": 0.5}, callbacks=[EvalLines(out)])
    trainer.fit()
    lines = out.getvalue().splitlines()
    assert lines[0] == "model: Linear, 4 parameters (all trainable)"
    assert [line.split("  ")[:2] for line in lines[1:]] == [["step 4/8", "epoch 1"],
                                                            ["step 8/8", "epoch 2"]]
    assert "  valid_loss 0.5  elapsed 0:00  eta 0:00" in lines[2]
    assert lines[1].split("  ")[2].startswith("loss ")


def test_nothing_per_evaluation_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    trainer = Trainer(torch.nn.Linear(3, 1), Toy(), TrainConfig(max_steps=4, progress=False),
                      loss_fn=loss, evaluate=lambda m: {"valid_loss": 0.5},
                      callbacks=[EvalLines(out)])
    trainer.fit()
    assert out.getvalue().splitlines() == ["model: Linear, 4 parameters (all trainable)"]


def test_frozen_parameters_and_clock():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model[0].weight.requires_grad_(False)
    assert model_summary(model) == "model: Sequential, 11 parameters (5 trainable)"
    assert (clock(59.9), clock(61), clock(3723)) == ("0:59", "1:01", "1:02:03")
