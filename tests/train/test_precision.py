"""Mixed precision: refused off CUDA (the CPU path stays float32); bf16/fp16 runs on CUDA."""

from __future__ import annotations

import pytest
import torch
from tests.train.train_toys import Recorder, RegressionSource, Regressor, quiet_config

from rnnkit.train import TrainConfig, Trainer, load_checkpoint, seed_everything
from rnnkit.train.precision import Precision

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_amp_mode_is_checked_by_the_config():
    with pytest.raises(ValueError, match=r"TrainConfig\.amp: expected one of none, bf16, fp16"):
        TrainConfig(max_steps=1, amp="fp8")
    with pytest.raises(TypeError, match=r"TrainConfig\.amp: expected a string"):
        TrainConfig(max_steps=1, amp=16)


def test_mixed_precision_is_refused_on_cpu():
    with pytest.raises(ValueError, match=r"config\.amp: 'bf16' mixed precision needs a CUDA"):
        Trainer(Regressor(), RegressionSource(), quiet_config(max_steps=1, amp="bf16"))


def test_no_amp_is_plain_float32_backward_and_step():
    precision = Precision("none", torch.device("cpu"))
    assert precision.state_dict() is None and not precision.skips_overflow
    weight = torch.nn.Parameter(torch.tensor([2.0]))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    with precision.autocast():
        loss = (weight * 3.0).sum()
    assert loss.dtype == torch.float32
    precision.backward(loss, optimizer)
    precision.step(optimizer)
    assert weight.item() == pytest.approx(2.0 - 0.5 * 3.0)


@needs_cuda
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_mixed_precision_learns_and_resumes(amp, tmp_path):
    seed_everything(0)
    source, model, recorder = RegressionSource(), Regressor(dropout=0.0), Recorder()
    config = quiet_config(device="cuda", amp=amp, lr=1e-2, max_epochs=10)
    Trainer(model, source, config, run_dir=tmp_path, callbacks=[recorder]).fit()
    assert sum(recorder.losses[-8:]) < sum(recorder.losses[:8]) / 5
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last", Regressor(dropout=0.0))
    assert all(t.device.type == "cpu" for t in checkpoint.model_state.values())
    assert (checkpoint.trainer_state["loss_scaler"] is not None) == (amp == "fp16")
    more = quiet_config(device="cuda", amp=amp, lr=1e-2, max_epochs=12)
    result = Trainer(Regressor(dropout=0.0), source, more, run_dir=tmp_path).fit(resume=True)
    assert result.global_step == 12 * len(source)
