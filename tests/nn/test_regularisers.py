"""Recurrent dropout, zoneout and layer normalisation (off by default)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.nn.helpers import make_pair

import rnnkit.nn as rnn


def _identity_relu_rnn(size: int, recurrent_dropout: float) -> rnn.RNN:
    layer = rnn.RNN(size, size, nonlinearity="relu", recurrent_dropout=recurrent_dropout,
                    dtype=torch.float64)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.eye(size))
        layer.weight_hh_l0.copy_(torch.eye(size))
        layer.bias_ih_l0.zero_()
        layer.bias_hh_l0.zero_()
    return layer


def test_recurrent_dropout_uses_one_mask_per_sequence():
    size, p = 64, 0.5
    layer = _identity_relu_rnn(size, p).train()
    x = torch.zeros(6, 3, size, dtype=torch.float64)
    x[0] = 1.0
    torch.manual_seed(0)
    output, _ = layer(x)
    kept = output[1] != 0
    assert 0.2 < kept.double().mean() < 0.8
    for t in range(1, 6):
        assert torch.equal(output[t] != 0, kept), f"mask changed at step {t}"
        expected = torch.where(kept, torch.full_like(output[t], (1 / (1 - p)) ** t), 0.0)
        torch.testing.assert_close(output[t], expected, rtol=1e-12, atol=0)
    assert not torch.equal(kept[:, 0], kept[:, 1]), "rows of a batch share a mask"


@pytest.mark.parametrize("kind", ["RNN_TANH", "LSTM", "GRU"])
def test_regularisers_are_inactive_in_eval_for_dropout(kind):
    reference, ours = make_pair(kind, 3, 5, num_layers=2, recurrent_dropout=0.3)
    ours.eval()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], reference(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_zoneout_in_eval_is_the_expected_update(kind):
    p = 0.25
    _, plain = make_pair(kind, 3, 4)
    _, zoned = make_pair(kind, 3, 4, zoneout=p)
    zoned.eval()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    state = None
    outputs = []
    for t in range(5):
        _, proposed = plain.step(x[t], state)
        previous = state if state is not None else tuple(torch.zeros_like(s) for s in (
            proposed if isinstance(proposed, tuple) else (proposed,)))
        if kind == "LSTM":
            state = tuple(p * old + (1 - p) * new for old, new in zip(previous, proposed,
                                                                       strict=True))
            outputs.append(state[0][0])
        else:
            previous = previous if isinstance(previous, torch.Tensor) else previous[0]
            state = p * previous + (1 - p) * proposed
            outputs.append(state[0])
    torch.testing.assert_close(zoned(x)[0], torch.stack(outputs), rtol=0, atol=1e-12)


def test_zoneout_in_training_keeps_or_updates_each_unit():
    p = 0.5
    _, zoned = make_pair("GRU", 3, 32, zoneout=p)
    cell = torch.nn.GRUCell(3, 32, dtype=torch.float64)
    cell.load_state_dict({k[:-3]: v for k, v in zoned.state_dict().items()})
    zoned.train()
    torch.manual_seed(1)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    output, _ = zoned(x)
    previous = torch.zeros(2, 32, dtype=torch.float64)
    kept_fraction = []
    for t in range(6):
        proposed = cell(x[t], previous)
        kept = torch.isclose(output[t], previous, rtol=0, atol=1e-14)
        updated = torch.isclose(output[t], proposed, rtol=0, atol=1e-14)
        assert bool((kept | updated).all()), f"step {t} mixes states"
        kept_fraction.append(kept.double().mean())
        previous = output[t]
    assert 0.3 < float(torch.stack(kept_fraction).mean()) < 0.7


def test_layer_norm_lstm_step_matches_hand_computation():
    layer = rnn.LSTM(3, 4, layer_norm=True, dtype=torch.float64)
    with torch.no_grad():
        for name, parameter in layer.named_parameters():
            if name.startswith("layer_norm_"):
                parameter.uniform_(-1, 1)
    x = torch.randn(1, 2, 3, dtype=torch.float64)
    output, (h, c) = layer(x)

    def norm(values, part):
        return F.layer_norm(values, values.shape[-1:],
                            getattr(layer, f"layer_norm_{part}_weight_l0"),
                            getattr(layer, f"layer_norm_{part}_bias_l0"))

    gates = (norm(x[0] @ layer.weight_ih_l0.T, "ih") + layer.bias_ih_l0
             + norm(torch.zeros(2, 4, dtype=torch.float64) @ layer.weight_hh_l0.T, "hh")
             + layer.bias_hh_l0)
    i, f, g, o = gates.chunk(4, dim=1)
    expected_c = torch.sigmoid(i) * torch.tanh(g)
    expected_h = torch.sigmoid(o) * torch.tanh(norm(expected_c, "cell"))
    torch.testing.assert_close(c[0], expected_c, rtol=0, atol=1e-12)
    torch.testing.assert_close(h[0], expected_h, rtol=0, atol=1e-12)
    torch.testing.assert_close(output[0], expected_h, rtol=0, atol=1e-12)
    del f


@pytest.mark.parametrize("cls", [rnn.LSTM, rnn.GRU])
def test_layer_norm_parameters_are_trained(cls):
    layer = cls(3, 4, num_layers=2, bidirectional=True, layer_norm=True)
    output, _ = layer(torch.randn(5, 2, 3), lengths=[5, 3])
    output.pow(2).sum().backward()
    norm_grads = {n: p.grad for n, p in layer.named_parameters() if n.startswith("layer_norm_")}
    expected_parts = 3 if cls is rnn.LSTM else 2
    assert len(norm_grads) == 2 * 2 * expected_parts * 2
    assert all(g is not None and g.abs().sum() > 0 for g in norm_grads.values())


def test_regularised_layers_run_the_python_loop_and_step():
    layer = rnn.LSTM(3, 4, num_layers=2, zoneout=0.1, recurrent_dropout=0.1, layer_norm=True)
    layer.eval()
    x = torch.randn(5, 2, 3)
    expected, _ = layer(x)
    state = None
    for t in range(5):
        y, state = layer.step(x[t], state)
    torch.testing.assert_close(y, expected[-1], rtol=1e-6, atol=1e-6)
