"""torch.fx.symbolic_trace sees rnnkit's recurrent layers as leaves, as it sees torch.nn's:
one call_module node each, run by the layer itself when the graph module runs."""

from __future__ import annotations

import pytest
import torch

from rnnkit import nn as rnn


class Head(torch.nn.Module):
    """A recurrent layer under a linear head, the state passed through."""

    def __init__(self, name: str):
        super().__init__()
        self.recurrent = getattr(rnn, name)(4, 8, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x, state=None, lengths=None):
        y, _ = self.recurrent(x, state, lengths=lengths)
        return self.head(y[:, -1])


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_a_traced_model_calls_the_layer_as_a_leaf(name):
    torch.manual_seed(0)
    model = Head(name)
    traced = torch.fx.symbolic_trace(model)
    calls = [node.target for node in traced.graph.nodes if node.op == "call_module"]
    assert calls == ["recurrent", "head"]
    x = torch.randn(5, 6, 4)  # another batch and length than anything seen while tracing
    torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)
    lengths = torch.tensor([6, 2, 4, 1, 3])
    torch.testing.assert_close(traced(x, None, lengths), model(x, None, lengths), rtol=0, atol=0)
    state = torch.randn(2, 5, 8)
    state = (state, torch.randn(2, 5, 8)) if name == "LSTM" else state
    torch.testing.assert_close(traced(x, state), model(x, state), rtol=0, atol=0)
