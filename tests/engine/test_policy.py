"""backend='auto' decisions and the no-extension contract."""

from __future__ import annotations

import pytest
import torch

from rnnkit import engine
from rnnkit.engine import _loader

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")


def decide(mode, hidden, batch, *, training=True, device="cpu", dtype=torch.float32):
    return engine.should_use(mode, input_size=hidden, hidden_size=hidden, batch=batch,
                             seq_len=100, dtype=dtype, device=device, training=training)


def test_rnn_and_gru_go_native_at_small_batch_and_torch_at_large_layers():
    for mode in ("RNN_TANH", "RNN_RELU", "GRU"):
        assert decide(mode, 512, 1) and decide(mode, 256, 32)
        assert decide(mode, 128, 128)
        assert not decide(mode, 256, 128) and not decide(mode, 512, 128)


def test_lstm_goes_native_only_at_tiny_batches():
    assert decide("LSTM", 64, 1, training=False) and decide("LSTM", 512, 1, training=True)
    assert not decide("LSTM", 256, 1, training=False)
    assert not decide("LSTM", 64, 32)


def test_never_native_off_cpu_or_for_other_dtypes():
    assert not decide("GRU", 64, 1, device="meta")
    assert not decide("GRU", 64, 1, dtype=torch.float16)


def test_missing_extension_is_reported(monkeypatch):
    monkeypatch.setattr(_loader, "native", None)
    monkeypatch.setattr(_loader, "import_error", ImportError("no compiler"))
    assert not engine.available()
    assert not decide("GRU", 64, 1)
    with pytest.raises(engine.EngineUnavailableError, match="no compiler"):
        engine.recurrence("GRU", torch.zeros(2, 1, 3), torch.zeros(1, 4), None,
                          torch.zeros(12, 3), torch.zeros(12, 4), None, None, None, None, False)


def test_bad_arguments_name_what_is_wrong():
    x, h0 = torch.zeros(2, 1, 3), torch.zeros(1, 4)
    w_ih, w_hh = torch.zeros(12, 3), torch.zeros(12, 4)
    with pytest.raises(ValueError, match="mode: expected one of"):
        engine.recurrence("LSTMX", x, h0, None, w_ih, w_hh, None, None, None, None, False)
    with pytest.raises(TypeError, match=r"weight_hh: expected dtype torch\.float32"):
        engine.recurrence("GRU", x, h0, None, w_ih, w_hh.double(), None, None, None, None, False)
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 2\]"):
        engine.recurrence("GRU", x, h0, None, w_ih, w_hh, None, None, None, torch.tensor([3]),
                          False)
    with pytest.raises(ValueError, match="h0: expected shape"):
        engine.recurrence("GRU", x, torch.zeros(2, 4), None, w_ih, w_hh, None, None, None, None,
                          False)


def test_isa_can_be_forced_and_reported():
    isas = engine.supported_isas()
    assert isas[0] == "generic" and engine.isa() in isas
    with pytest.raises(ValueError, match="isa"):
        engine.set_isa("sse9")
