"""The training loop: learning, exact resume, stopping rules, clipping, callbacks."""

from __future__ import annotations

import io
import math
import os
import signal
import time

import pytest
import torch
from tests.train.train_toys import (
    CarriedHiddenLoss,
    FailingLoss,
    Recorder,
    RegressionSource,
    Regressor,
    SequenceModel,
    SequenceSource,
    mse_on,
    quiet_config,
)

from rnnkit.train import (
    Callback,
    NonFiniteLossError,
    ProgressBar,
    Trainer,
    TrainingInterrupted,
    load_checkpoint,
    read_metadata,
    seed_everything,
)


def test_model_learns_regression():
    seed_everything(0)
    source = RegressionSource()
    model = Regressor(dropout=0.0)
    before = mse_on(model, source)
    recorder = Recorder()
    result = Trainer(
        model, source, quiet_config(lr=1e-2, max_epochs=25), callbacks=[recorder]
    ).fit()
    after = mse_on(model.eval(), source)
    assert result.stop_reason == "max_epochs"
    assert result.global_step == 25 * len(source) == len(recorder.records)
    # 200 AdamW steps take a noisy linear target from its initial error down by >= 20x.
    assert after < before / 20
    assert sum(recorder.losses[-8:]) < sum(recorder.losses[:8]) / 20


def _interrupt_at(step: int, signal_number: int = signal.SIGINT) -> Callback:
    class SendSignal(Callback):
        def on_batch_end(self, trainer, record):
            if record.step == step:
                os.kill(os.getpid(), signal_number)  # SIGINT: what Ctrl-C does

    return SendSignal()


def _sequence_trainer(run_dir, recorder, *extra_callbacks, loss_fn=None, **overrides):
    seed_everything(1)
    settings = dict(lr=1e-2, max_steps=20, schedule="cosine", warmup_steps=3, eval_every=4, seed=5)
    settings.update(overrides)
    model = SequenceModel()
    source = SequenceSource(batches=6)

    def evaluate(model):
        losses = [
            model.head(model.rnn(b.x)[0]).sub(b.y).pow(2).mean() for b in source.iter_epoch(0)
        ]
        return {"valid_loss": float(sum(losses) / len(losses))}

    return Trainer(
        model,
        source,
        quiet_config(**settings),
        loss_fn=loss_fn if loss_fn is not None else CarriedHiddenLoss(),
        evaluate=evaluate,
        run_dir=run_dir,
        metadata={"model": "toy-rnn"},
        callbacks=[recorder, *extra_callbacks],
    )


def test_ctrl_c_then_resume_reproduces_the_uninterrupted_run_bit_for_bit(tmp_path):
    # Dropout (torch RNG), NumPy/Python jitter, a carried hidden state, warm-up + cosine lr,
    # evaluations and epoch boundaries (6 batches per epoch) all cross the interruption.
    full = Recorder()
    full_trainer = _sequence_trainer(tmp_path / "full", full)
    full_trainer.fit()

    first = Recorder()
    with pytest.raises(KeyboardInterrupt):
        _sequence_trainer(tmp_path / "split", first, _interrupt_at(9)).fit()
    assert read_metadata(tmp_path / "split/checkpoints/last")["trainer"]["step"] == 9

    second = Recorder()
    resumed = _sequence_trainer(tmp_path / "split", second)
    result = resumed.fit(resume=True)

    assert result.global_step == 20 and result.stop_reason == "max_steps"
    assert first.losses == full.losses[:9]
    assert second.losses == full.losses[9:]  # exact float equality, step by step
    assert [r.lr for r in second.records] == [r.lr for r in full.records[9:]]
    for (name, a), b in zip(
        full_trainer.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert second.evals == full.evals[2:]  # evaluations at steps 12, 16, 20


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stop_signals_save_last_name_themselves_and_resume_exactly(tmp_path, signal_number):
    full = Recorder()
    _sequence_trainer(tmp_path / "full", full, max_steps=12).fit()

    with pytest.raises(TrainingInterrupted) as stopped:
        _sequence_trainer(tmp_path / "split", Recorder(), _interrupt_at(5, signal_number),
                          max_steps=12).fit()
    assert stopped.value.signal_number == signal_number
    assert stopped.value.step == 5
    assert stopped.value.checkpoint == tmp_path / "split/checkpoints/last"
    last = read_metadata(tmp_path / "split/checkpoints/last")["trainer"]
    assert (last["step"], last["stop_reason"]) == (5, "interrupted")
    # The handlers are gone after fit: the process's own ones are back.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    second = Recorder()
    _sequence_trainer(tmp_path / "split", second, max_steps=12).fit(resume=True)
    assert second.losses == full.losses[5:]  # exact float equality, step by step


def test_resume_without_the_loss_state_diverges(tmp_path):
    """Control for the test above: dropping the carried hidden state changes the losses."""

    class ForgetfulLoss(CarriedHiddenLoss):
        def load_state_dict(self, state):
            self.hidden = None

    full = Recorder()
    _sequence_trainer(tmp_path / "full", full).fit()
    with pytest.raises(KeyboardInterrupt):
        _sequence_trainer(tmp_path / "split", Recorder(), _interrupt_at(8)).fit()
    second = Recorder()
    _sequence_trainer(tmp_path / "split", second, loss_fn=ForgetfulLoss()).fit(resume=True)
    assert second.losses[0] != full.losses[8]


def test_resume_after_max_steps_extends_the_run(tmp_path):
    settings = dict(schedule="constant", warmup_steps=0)
    full = Recorder()
    _sequence_trainer(tmp_path / "full", full, **settings).fit()
    short = Recorder()
    assert (
        _sequence_trainer(tmp_path / "run", short, max_steps=7, **settings).fit().global_step == 7
    )
    longer = Recorder()
    _sequence_trainer(tmp_path / "run", longer, **settings).fit(resume=True)
    assert short.losses + longer.losses == full.losses


def test_loss_fn_reset_at_each_epoch_start():
    loss_fn = CarriedHiddenLoss()
    seed_everything(0)
    Trainer(
        SequenceModel(), SequenceSource(batches=3), quiet_config(max_epochs=4), loss_fn=loss_fn
    ).fit()
    assert loss_fn.resets == 4


def test_fresh_fit_refuses_a_run_dir_with_checkpoints(tmp_path):
    _sequence_trainer(tmp_path, Recorder(), max_steps=4).fit()
    with pytest.raises(FileExistsError, match="resume=True"):
        _sequence_trainer(tmp_path, Recorder(), max_steps=4).fit()


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    seed_everything(0)
    model = Regressor()
    trainer = Trainer(
        model,
        RegressionSource(),
        quiet_config(max_steps=20, checkpoint_every=3),
        loss_fn=FailingLoss(7, float("nan")),
        run_dir=tmp_path,
    )
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 7 .*checkpoint is kept"):
        trainer.fit()
    assert trainer.state.stop_reason == "non_finite"
    checkpoint = load_checkpoint(tmp_path / "checkpoints/last", model=Regressor())
    assert checkpoint.metadata["trainer"]["step"] == 6
    # The model in memory was not updated by the bad step: it equals the saved one.
    for name, value in model.state_dict().items():
        assert torch.equal(value, checkpoint.model_state[name]), name
        assert torch.isfinite(value).all()


def test_infinite_gradient_stops_before_the_update():
    class InfGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad * float("inf")

    seed_everything(0)
    model = Regressor()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(
        model,
        RegressionSource(),
        quiet_config(max_steps=5),
        loss_fn=lambda m, b: InfGrad.apply(m.loss(b)),
    )
    with pytest.raises(NonFiniteLossError, match=r"gradient norm is (inf|nan) at step 1"):
        trainer.fit()
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_early_stopping_after_patience_evaluations(tmp_path):
    scores = iter([5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 1.0, 1.0])
    seed_everything(0)
    recorder = Recorder()
    result = Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=100, eval_every=2, patience=3),
        evaluate=lambda model: {"valid_loss": next(scores)},
        run_dir=tmp_path,
        callbacks=[recorder],
    ).fit()
    # Best 3.0 at the 3rd evaluation (step 6); 3 evaluations without improvement -> stop at 12.
    assert result.stop_reason == "early_stopping"
    assert result.global_step == 12
    assert (result.best_metric, result.best_step) == (3.0, 6)
    assert read_metadata(tmp_path / "checkpoints/best")["trainer"]["step"] == 6
    last = read_metadata(tmp_path / "checkpoints/last")["trainer"]
    assert (last["step"], last["stop_reason"]) == (12, "early_stopping")


def test_monitor_max_mode_and_min_delta():
    scores = iter([0.50, 0.505, 0.52, 0.60])
    seed_everything(0)
    result = Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=4, eval_every=1, min_delta=0.01),
        evaluate=lambda model: {"accuracy": next(scores)},
        monitor="accuracy",
        monitor_mode="max",
    ).fit()
    assert (result.best_metric, result.best_step) == (0.60, 4)
    assert result.metrics == {"accuracy": 0.60}


def test_missing_monitor_is_a_clear_error():
    trainer = Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=2),
        evaluate=lambda model: {"loss": 1.0},
    )
    with pytest.raises(ValueError, match=r"monitor: 'valid_loss' is not among .*loss"):
        trainer.fit()


def _gradient_capture(model):
    """Pre-clip gradients, seen by tensor hooks before the trainer touches them."""
    captured = {}
    for name, parameter in model.named_parameters():
        parameter.register_hook(lambda grad, name=name: captured.__setitem__(name, grad.clone()))
    return captured


class ClipCheck(Callback):
    def __init__(self, model, captured):
        self.model, self.captured, self.rows = model, captured, []

    def on_batch_end(self, trainer, record):
        pre = torch.linalg.vector_norm(torch.stack([g.norm() for g in self.captured.values()]))
        grads = [p.grad for p in self.model.parameters()]
        post = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        biggest = max(g.abs().max().item() for g in grads)
        self.rows.append((record.grad_norm, pre.item(), post.item(), biggest))


def test_clip_norm_bounds_the_update_and_logs_the_pre_clip_norm():
    seed_everything(0)
    model = Regressor()
    check = ClipCheck(model, _gradient_capture(model))
    Trainer(
        model, RegressionSource(), quiet_config(max_steps=10, clip_norm=0.05), callbacks=[check]
    ).fit()
    for logged, pre, post, _ in check.rows:
        assert logged == pytest.approx(pre, rel=1e-6)
        assert pre > 0.05  # this toy's gradients are larger, so clipping is exercised
        assert post <= 0.05 * (1 + 1e-5)


def test_clip_value_bounds_each_gradient_element():
    seed_everything(0)
    model = Regressor()
    check = ClipCheck(model, _gradient_capture(model))
    config = quiet_config(max_steps=5, clip_norm=None, clip_value=0.01)
    Trainer(model, RegressionSource(), config, callbacks=[check]).fit()
    for logged, pre, _, biggest in check.rows:
        assert logged == pytest.approx(pre, rel=1e-6)
        assert biggest <= 0.01


def test_callbacks_are_called_in_order():
    calls: list = []
    first, second = Recorder("first", calls), Recorder("second", calls)
    seed_everything(0)
    Trainer(
        Regressor(),
        RegressionSource(batches=2),
        quiet_config(max_steps=3),
        evaluate=lambda model: {"valid_loss": 1.0},
        callbacks=[first, second],
    ).fit()
    assert calls == [
        ("first", "fit_start", 0),
        ("second", "fit_start", 0),
        ("first", "batch_end", 1),
        ("second", "batch_end", 1),
        ("first", "batch_end", 2),  # end of epoch 0: evaluation
        ("second", "batch_end", 2),
        ("first", "eval_end", 2),
        ("second", "eval_end", 2),
        ("first", "batch_end", 3),  # budget reached: final evaluation
        ("second", "batch_end", 3),
        ("first", "eval_end", 3),
        ("second", "eval_end", 3),
        ("first", "fit_end", 3),
        ("second", "fit_end", 3),
    ]


def test_max_time_budget_stops_the_run():
    def slow_loss(model, batch):
        time.sleep(0.02)
        return model.loss(batch)

    seed_everything(0)
    trainer = Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_time=0.25 / 60, max_steps=10_000),
        loss_fn=slow_loss,
    )
    started = time.monotonic()
    result = trainer.fit()
    elapsed = time.monotonic() - started
    assert result.stop_reason == "max_time"
    assert 1 <= result.global_step <= 13  # 0.25 s at >= 20 ms a step
    assert elapsed < 1.5  # stops within a step of the budget (slack for a loaded machine)


def test_bad_arguments_name_themselves():
    source, config = RegressionSource(), quiet_config(max_steps=1)
    with pytest.raises(TypeError, match="train_data"):
        Trainer(Regressor(), [1, 2], config)
    with pytest.raises(TypeError, match="loss_fn"):
        Trainer(torch.nn.Linear(4, 1), source, config)
    with pytest.raises(ValueError, match="monitor_mode"):
        Trainer(Regressor(), source, config, monitor_mode="up")
    with pytest.raises(ValueError, match=r"metadata.*reserved"):
        Trainer(Regressor(), source, config, metadata={"trainer": 1})
    with pytest.raises(ValueError, match=r"config\.patience"):
        Trainer(Regressor(), source, quiet_config(max_steps=1, patience=2))
    with pytest.raises(ValueError, match=r"config\.schedule"):
        Trainer(Regressor(), source, quiet_config(max_steps=1, schedule="plateau"))
    with pytest.raises(TypeError, match="loss_fn: expected a scalar"):
        Trainer(Regressor(), source, config, loss_fn=lambda m, b: m(b.x)).fit()


def test_loss_is_logged_as_the_value_backpropagated():
    seed_everything(0)
    recorder, seen = Recorder(), []

    def loss_fn(model, batch):
        loss = model.loss(batch)
        seen.append(loss.item())
        return loss

    Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=4),
        loss_fn=loss_fn,
        callbacks=[recorder],
    ).fit()
    assert recorder.losses == seen
    assert all(math.isfinite(r.grad_norm) and r.grad_norm > 0 for r in recorder.records)


def test_keyboard_interrupt_between_steps_saves_last(tmp_path):
    class StopAtFour(Callback):
        def on_batch_end(self, trainer, record):
            if record.step == 4:
                raise KeyboardInterrupt

    seed_everything(0)
    trainer = Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=10),
        run_dir=tmp_path,
        callbacks=[StopAtFour()],
    )
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert trainer.state.stop_reason == "interrupted"
    last = read_metadata(tmp_path / "checkpoints/last")["trainer"]
    assert (last["step"], last["stop_reason"]) == (4, "interrupted")


def test_keyboard_interrupt_inside_a_step_keeps_the_previous_last(tmp_path):
    seed_everything(0)
    trainer = Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=10, checkpoint_every=2),
        loss_fn=FailingLoss(6, None),
        run_dir=tmp_path,
    )
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert read_metadata(tmp_path / "checkpoints/last")["trainer"]["step"] == 4


def test_progress_bar_shows_loss_rate_and_total():
    stream = io.StringIO()
    seed_everything(0)
    Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=5),
        callbacks=[ProgressBar(file=stream, disable=False)],
    ).fit()
    text = stream.getvalue()
    assert "5/5" in text and "loss=" in text and "lr=" in text and "step/s" in text


def test_time_budget_counts_the_resumed_part(tmp_path):
    def slow_loss(model, batch):
        time.sleep(0.01)
        return model.loss(batch)

    def trainer(max_time):
        seed_everything(0)
        config = quiet_config(max_time=max_time / 60, max_steps=10_000)
        return Trainer(Regressor(), RegressionSource(), config, loss_fn=slow_loss, run_dir=tmp_path)

    first = trainer(max_time=0.1).fit()
    assert first.stop_reason == "max_time"
    spent = load_checkpoint(tmp_path / "checkpoints/last").trainer_state["progress"]
    assert spent["elapsed_seconds"] >= 0.1
    again = trainer(max_time=0.1).fit(resume=True)  # budget already used: no more steps
    assert (again.stop_reason, again.global_step) == ("max_time", first.global_step)
    more = trainer(max_time=0.3).fit(resume=True)
    assert more.stop_reason == "max_time" and more.global_step > first.global_step
