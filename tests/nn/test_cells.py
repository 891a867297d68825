"""RNNCell, LSTMCell and GRUCell against torch.nn, including gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkit.nn as rnn

CELLS = [("RNNCell", {"nonlinearity": "tanh"}), ("RNNCell", {"nonlinearity": "relu"}),
         ("LSTMCell", {}), ("GRUCell", {})]


def _pair(name, options, input_size, hidden_size, bias):
    torch.manual_seed(0)
    reference = getattr(torch.nn, name)(input_size, hidden_size, bias=bias, dtype=torch.float64,
                                        **options)
    torch.manual_seed(0)
    ours = getattr(rnn, name)(input_size, hidden_size, bias=bias, dtype=torch.float64, **options)
    for (ref_name, expected), (our_name, actual) in zip(reference.named_parameters(),
                                                        ours.named_parameters(), strict=True):
        assert ref_name == our_name and torch.equal(actual, expected)
    return reference, ours


@settings(max_examples=40, deadline=None)
@given(cell=st.sampled_from(CELLS), input_size=st.integers(1, 5), hidden_size=st.integers(1, 6),
       batch=st.integers(1, 4), bias=st.booleans(), batched=st.booleans(),
       with_state=st.booleans())
def test_cells_match_torch(cell, input_size, hidden_size, batch, bias, batched, with_state):
    name, options = cell
    reference, ours = _pair(name, options, input_size, hidden_size, bias)
    shape = (batch,) if batched else ()
    x = torch.randn(*shape, input_size, dtype=torch.float64, requires_grad=True)
    states = None
    if with_state:
        count = 2 if name == "LSTMCell" else 1
        states = [torch.randn(*shape, hidden_size, dtype=torch.float64, requires_grad=True)
                  for _ in range(count)]
    hx = None if states is None else (tuple(states) if name == "LSTMCell" else states[0])
    results = []
    for module in (reference, ours):
        out = module(x, hx)
        out = out if isinstance(out, tuple) else (out,)
        loss = sum((o * torch.arange(o.numel(), dtype=o.dtype).reshape(o.shape)).sum()
                   for o in out)
        inputs = [x, *(states or []), *module.parameters()]
        results.append((out, torch.autograd.grad(loss, inputs)))
    (expected_out, expected_grads), (actual_out, actual_grads) = results
    for actual, expected in zip(actual_out + actual_grads, expected_out + expected_grads,
                                strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("name", "options"), CELLS)
def test_cell_equals_one_step_of_the_layer(name, options):
    layer_name = name.replace("Cell", "")
    torch.manual_seed(0)
    layer = getattr(rnn, layer_name)(3, 4, dtype=torch.float64, **options)
    cell = getattr(rnn, name)(3, 4, dtype=torch.float64, **options)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(2, 3, dtype=torch.float64)
    output, _ = layer(x.unsqueeze(0))
    stepped = cell(x)
    stepped = stepped[0] if isinstance(stepped, tuple) else stepped
    torch.testing.assert_close(stepped, output[0], rtol=0, atol=1e-12)
