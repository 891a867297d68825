"""Gradient flow through time equals a brute-force derivative and has the right decay."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnkit import nn as rnn
from rnnkit.analysis.decay import FlowThresholds, summarize
from rnnkit.analysis.gradient_flow import align_by_distance, gradient_flow
from rnnkit.data.batch import TokenBatch
from rnnkit.models import LanguageModel, LanguageModelConfig


def _readout_loss(layer, x):
    output, _ = layer(x)
    return (output[-1] ** 2).sum() + output[2].sum()


def _brute_force_norms(layer, x):
    """``||∂L/∂h_t||`` per (step, row) by injecting a zero perturbation into ``h_t``."""
    seq_len, batch = x.shape[0], x.shape[1]
    norms = np.zeros((seq_len, batch))
    for t in range(seq_len):
        delta = torch.zeros(batch, layer.hidden_size, dtype=torch.float64, requires_grad=True)
        state, outputs = None, []
        for step in range(seq_len):
            y, state = layer.step(x[step], state)
            if step == t:
                y = y + delta
                state = ((state[0] + delta.unsqueeze(0), state[1]) if isinstance(state, tuple)
                         else state + delta.unsqueeze(0))
            outputs.append(y)
        output = torch.stack(outputs)
        loss = (output[-1] ** 2).sum() + output[2].sum()
        (gradient,) = torch.autograd.grad(loss, delta)
        norms[t] = gradient.norm(dim=1).numpy()
    return norms


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_norms_equal_brute_force(cell):
    torch.manual_seed(0)
    layer = getattr(rnn, cell)(3, 4, backend="torch").double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    flow = gradient_flow(layer, x, loss_fn=_readout_loss)
    np.testing.assert_allclose(flow.curve().norms.T, _brute_force_norms(layer, x), rtol=1e-9)


def test_input_norms_equal_autograd():
    torch.manual_seed(0)
    layer = rnn.GRU(3, 4, backend="torch").double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(_readout_loss(layer, x), x)
    flow = gradient_flow(layer, x, loss_fn=_readout_loss)
    np.testing.assert_allclose(flow.inputs[0].norms.T, gradient.norm(dim=2).numpy(), rtol=1e-9)


def _linear_rnn(scale: float):
    """A ReLU RNN that stays in its linear region: positive inputs and weights, W_hh = scale I."""
    layer = rnn.RNN(2, 2, nonlinearity="relu", bias=False).double()
    with torch.no_grad():
        layer.weight_hh_l0.copy_(scale * torch.eye(2))
        layer.weight_ih_l0.fill_(1.0)
    return layer


def _last_step_loss(layer, x):
    return layer(x)[0][-1].sum()


def _linear_summary(scale: float):
    x = torch.rand(20, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return gradient_flow(_linear_rnn(scale), x + 0.1, loss_fn=_last_step_loss).curve().summary()


def test_contracting_linear_rnn_decays_by_log_half():
    summary = _linear_summary(0.5)
    assert summary.decay_rate == pytest.approx(math.log(0.5), abs=1e-9)
    assert summary.verdict == "vanishing"
    assert summary.memory_length == 7 and not summary.censored  # 0.5**6 >= 1% > 0.5**7


def test_expanding_linear_rnn_is_exploding():
    summary = _linear_summary(1.5)
    assert summary.decay_rate == pytest.approx(math.log(1.5), abs=1e-9)
    assert summary.verdict == "exploding"
    assert summary.censored and summary.memory_length == 20


def test_model_flow_with_lengths_leaves_gradients_alone():
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=7, hidden_size=5, embedding_size=4,
                                              num_layers=2))
    tokens = torch.randint(1, 7, (3, 6))
    batch = TokenBatch(tokens, torch.tensor([6, 4, 2]), torch.randint(1, 7, (3, 6)))
    batch.targets[1, 4:] = -100
    batch.targets[2, 2:] = -100
    flow = gradient_flow(model, batch)
    assert all(p.grad is None for p in model.parameters())
    assert model.training  # restored
    curve = flow.curve(layer=0)
    assert np.isnan(curve.norms[2, 2:]).all() and np.isfinite(curve.norms[2, :2]).all()
    assert [c.layer for c in flow.states] == [0, 1]
    assert np.isfinite(flow.curve().by_distance).all()


def test_align_by_distance_uses_each_rows_end():
    norms = np.array([[1.0, 2.0, 3.0], [5.0, 6.0, np.nan]])
    forward = align_by_distance(norms, np.array([3, 2]), reverse=False)
    np.testing.assert_allclose(forward, [(3 + 6) / 2, (2 + 5) / 2, 1.0])
    reverse = align_by_distance(norms, np.array([3, 2]), reverse=True)
    np.testing.assert_allclose(reverse, [3.0, 4.0, 3.0])


def test_summary_thresholds_and_edge_cases():
    flat = np.full(10, 2.0)
    assert summarize(flat).verdict == "stable"
    assert summarize(np.array([1.0])).verdict == "undetermined"
    gentle = 0.97 ** np.arange(30)
    assert summarize(gentle).verdict == "stable"
    assert summarize(gentle, FlowThresholds(vanishing_factor=0.99)).verdict == "vanishing"
    # a cell state the loss does not read at the last step: memory counts from the first
    # non-zero norm
    assert summarize(np.array([0.0, 1.0, 0.5, 0.001])).memory_length == 3
    with pytest.raises(ValueError, match="memory_fraction"):
        FlowThresholds(memory_fraction=1.5)


def test_loss_fn_must_return_scalar():
    layer = rnn.RNN(2, 2)
    with pytest.raises(ValueError, match="scalar"):
        gradient_flow(layer, torch.randn(3, 1, 2), loss_fn=lambda m, x: m(x)[0])
