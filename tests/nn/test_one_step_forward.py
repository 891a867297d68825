"""forward() over a one-step sequence in inference (a decoder fed one token at a time) runs
as step() does: the native one-call step where the batched-step table says it wins, torch's
numbers either way, and the general path (with its errors) for everything else."""

from __future__ import annotations

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair

from rnnkit import engine
from rnnkit import nn as rnn

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")


def _spy_steps(monkeypatch):
    """Record each native one-call step forward() hands a one-step sequence to."""
    from rnnkit.nn import base

    calls = []
    real = base.native_step

    def spy(layer, input, state):
        result = real(layer, input, state)
        calls.append(result is not None)
        return result
    monkeypatch.setattr(base, "native_step", spy)
    return calls


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("options", [{}, {"num_layers": 2, "bias": False}])
def test_a_one_step_sequence_gives_the_reference_numbers(kind, batch_first, options,
                                                          monkeypatch):
    reference, layer = make_pair(kind, 3, 5, backend="native", batch_first=batch_first,
                                 **options)
    calls = _spy_steps(monkeypatch)
    x = torch.randn((4, 1, 3) if batch_first else (1, 4, 3), dtype=torch.float64)
    state = tuple(s.clone() for s in as_tuple(reference(x)[1]))  # a state not all zeros
    state = state if kind == "LSTM" else state[0]
    with torch.no_grad():
        for hx in (None, state):
            want_y, want_state = reference(x, hx)
            y, got_state = layer(x, hx)
            assert y.shape == want_y.shape
            torch.testing.assert_close(y, want_y, rtol=1e-10, atol=1e-12)
            for got, want in zip(as_tuple(got_state), as_tuple(want_state), strict=True):
                torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert calls == [True, True]  # both calls ran the one-call step


def test_projected_lstm_steps_too(monkeypatch):
    reference, layer = make_pair("LSTM", 3, 6, backend="native", proj_size=2, num_layers=2)
    calls = _spy_steps(monkeypatch)
    x = torch.randn(1, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        (y, (h, c)), (want_y, (want_h, want_c)) = layer(x), reference(x)
    assert calls == [True] and y.shape == (1, 3, 2) and h.shape == (2, 3, 2)
    for got, want in ((y, want_y), (h, want_h), (c, want_c)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("kind", "hidden", "batch"), [("LSTM", 64, 8), ("GRU", 256, 32),
                                                     ("RNN_TANH", 64, 2048),
                                                     ("LSTM", 512, 512)])
def test_auto_steps_where_the_batched_step_table_says(kind, hidden, batch, monkeypatch):
    reference, layer = make_pair(kind, 4, hidden, backend="auto", dtype=torch.float32)
    calls = _spy_steps(monkeypatch)
    x = torch.randn(1, batch, 4)
    with torch.no_grad():
        (y, _), (want_y, _) = layer(x), reference(x)
    assert calls == [engine.streaming_wins(kind, hidden, batch)]
    torch.testing.assert_close(y, want_y, rtol=1e-5, atol=1e-6)


def test_the_other_calls_keep_the_general_path(monkeypatch):
    layer = rnn.GRU(3, 5, backend="native")
    calls = _spy_steps(monkeypatch)
    with torch.no_grad():
        layer(torch.randn(2, 4, 3))  # two steps
        layer(torch.randn(1, 3))  # unbatched
        layer(torch.randn(1, 4, 3), lengths=torch.tensor([1, 1, 1, 1]))
        rnn.GRU(3, 5, bidirectional=True, backend="native")(torch.randn(1, 4, 3))
    layer(torch.randn(1, 4, 3, requires_grad=True))[0].sum().backward()  # training
    assert calls == [False]  # only the bidirectional layer asked, and was refused


def test_a_wrong_state_gets_forwards_own_error():
    layer = rnn.LSTM(3, 5, backend="native")
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size"):
        layer(torch.randn(1, 4, 3), (torch.zeros(1, 2, 5), torch.zeros(1, 4, 5)))
