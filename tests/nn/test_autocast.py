"""Inside ``torch.autocast("cpu")`` rnnkit's layers give what torch.nn's give: torch.nn
computes them in the lower precision (and returns it for LSTM and RNN), so ``auto`` runs
torch's kernels there, the fast paths included. On a CPU whose oneDNN has no bfloat16 LSTM
(AVX2 only) torch.nn's LSTM fails there; rnnkit's runs torch's generic LSTM, which is torch.nn's
with oneDNN switched off."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit.nn import backend as backends

ONEDNN_HAS_BFLOAT16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()


@contextmanager
def _onednn(enabled: bool):
    with warnings.catch_warnings():
        # flags() also sets oneDNN's TF32 switch, which warns on a build without Intel GPUs.
        warnings.filterwarnings("ignore", "TF32 acceleration", UserWarning)
        with torch.backends.mkldnn.flags(enabled=enabled):
            yield


def _torch_nn(kind, reference, *args):
    """torch.nn's result as this CPU can give it (see the module's docstring)."""
    with _onednn(not (kind == "LSTM" and not ONEDNN_HAS_BFLOAT16)):
        return reference(*args)


def _same(got, want):
    for a, b in zip((got[0], *as_tuple(got[1])), (want[0], *as_tuple(want[1])), strict=True):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("grad", [False, True])
def test_a_layer_gives_torch_nn_outputs_and_dtypes(kind, grad):
    reference, layer = make_pair(kind, 4, 8, dtype=torch.float32, backend="auto",
                                 num_layers=2, batch_first=True)
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(grad):
        for _ in range(2):  # the second call is the one a cached fast path would serve
            _same(layer(x), _torch_nn(kind, reference, x))
            # one step, as a decoder calls it
            _same(layer(x[:, :1]), _torch_nn(kind, reference, x[:, :1]))
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        (got, got_state), (want, want_state) = layer(packed), _torch_nn(kind, reference, packed)
        _same((got.data, got_state), (want.data, want_state))


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_step_gives_a_one_step_forward_of_torch_nn(kind):
    reference, layer = make_pair(kind, 4, 8, dtype=torch.float32, backend="auto")
    x = torch.randn(5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        y, state = layer.step(x)
        want_y, want_state = _torch_nn(kind, reference, x.unsqueeze(0))
    _same((y, state), (want_y[0], want_state))


def test_gradients_are_torch_nns():
    reference, layer = make_pair("LSTM", 4, 8, dtype=torch.float32, backend="auto")
    x = torch.randn(6, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = layer(x)[0].float().square().sum()
        want = _torch_nn("LSTM", reference, x)[0].float().square().sum()
    for a, b in zip(torch.autograd.grad(loss, list(layer.parameters())),
                    torch.autograd.grad(want, list(reference.parameters())), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.skipif(ONEDNN_HAS_BFLOAT16, reason="this CPU's oneDNN has a bfloat16 LSTM")
def test_where_torch_nn_lstm_fails_under_autocast_rnnkits_runs():
    reference, layer = make_pair("LSTM", 4, 8, dtype=torch.float32, backend="auto")
    x = torch.randn(6, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(RuntimeError, match="primitive descriptor"):
            reference(x)
        assert layer(x)[0].dtype == torch.float32


@pytest.mark.parametrize("grad", [False, True])
def test_without_onednn_for_the_dtype_lstm_runs_torchs_generic_kernel(monkeypatch, grad):
    # Any machine: pretend this CPU's oneDNN has no bfloat16 LSTM, as on an AVX2-only EPYC.
    monkeypatch.setitem(backends._ONEDNN_RUNS, torch.bfloat16, lambda: False)
    reference, layer = make_pair("LSTM", 4, 8, dtype=torch.float32, backend="auto",
                                 num_layers=2)
    x = torch.randn(6, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(grad):
        got = layer(x)
        with _onednn(False):
            want = reference(x)
        step = layer.step(x[0])
    _same(got, want)
    assert got[0].dtype == step[0].dtype == torch.float32
    assert torch._C._get_mkldnn_enabled()  # switched back on after the call
    if grad:
        grads = torch.autograd.grad(got[0].square().sum(), list(layer.parameters()))
        wants = torch.autograd.grad(want[0].square().sum(), list(reference.parameters()))
        for a, b in zip(grads, wants, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
