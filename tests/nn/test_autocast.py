"""Inside ``torch.autocast("cpu")`` rnnkit's layers give what torch.nn's give: torch.nn
computes them in the lower precision (and returns it for LSTM and RNN), so ``auto`` runs
torch's kernels there, the fast paths included."""

from __future__ import annotations

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair
from torch.nn.utils.rnn import pack_padded_sequence


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
            _same(layer(x), reference(x))
            _same(layer(x[:, :1]), reference(x[:, :1]))  # one step, as a decoder calls it
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        (got, got_state), (want, want_state) = layer(packed), reference(packed)
        _same((got.data, got_state), (want.data, want_state))


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_step_gives_a_one_step_forward_of_torch_nn(kind):
    reference, layer = make_pair(kind, 4, 8, dtype=torch.float32, backend="auto")
    x = torch.randn(5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        y, state = layer.step(x)
        want_y, want_state = reference(x.unsqueeze(0))
    _same((y, state), (want_y[0], want_state))


def test_gradients_are_torch_nns():
    reference, layer = make_pair("LSTM", 4, 8, dtype=torch.float32, backend="auto")
    x = torch.randn(6, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, want = layer(x)[0].float().square().sum(), reference(x)[0].float().square().sum()
    for a, b in zip(torch.autograd.grad(loss, list(layer.parameters())),
                    torch.autograd.grad(want, list(reference.parameters())), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
