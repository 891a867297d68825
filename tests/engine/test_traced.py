"""rnnkit layers under torch.compile and torch.export: one graph, eager's outputs and gradients.

While tracing, the engine runs through the ``torch.ops.rnnkit.recurrence`` custom op (fake
implementation for shapes, registered autograd for gradients), never through a raw pointer.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from rnnkit import engine
from rnnkit import nn as rnn
from rnnkit.engine import traced

from .test_determinism import output_weights

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

LAYERS = [
    ("GRU", {}),
    ("LSTM", {"proj_size": 5}),
    ("LSTM", {}),
    ("RNN", {"nonlinearity": "relu"}),
]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def make_layer(name: str, options: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return getattr(rnn, name)(6, 12, num_layers=2, batch_first=True, bidirectional=True,
                              backend="native", **options)


def outputs_and_grads(layer, x):
    y, state = layer(x)
    states = state if isinstance(state, tuple) else (state,)
    loss = (y * output_weights(y)).sum() + sum(s.square().sum() for s in states)
    return [y, *states, *torch.autograd.grad(loss, [x, *layer.parameters()])]


@pytest.mark.parametrize(("name", "options"), LAYERS)
def test_compiled_layer_is_one_graph_with_eager_outputs_and_gradients(name, options):
    layer = make_layer(name, options)
    x = torch.randn(3, 7, 6, requires_grad=True)
    expected = outputs_and_grads(layer, x)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")  # a break would raise
    got = outputs_and_grads(compiled, x)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_compiled_inference_is_one_graph_with_eager_outputs(name, steps):
    # Under no_grad the op keeps nothing for backward, and the eager engine may keep no
    # scratch either (its inference path): the op must still return the fake's placeholders.
    # A one-step sequence runs eagerly on the one-call step kernel, which tracing cannot
    # see into: compiled, it must take the traceable path, not break the graph.
    torch.manual_seed(0)
    layer = getattr(rnn, name)(6, 12, num_layers=2, batch_first=True, backend="native").eval()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")  # a break would raise
    assert_same_over_two_calls(compiled, layer, torch.randn(3, steps, 6))


def test_compiled_inference_with_lengths_matches_eager():
    # Checking lengths breaks the graph (a functorch query dynamo cannot trace); the
    # recurrence after it is compiled, and keeps nothing for backward either.
    torch.manual_seed(0)
    layer = rnn.LSTM(6, 12, batch_first=True, backend="native").eval()
    compiled = torch.compile(layer, backend="aot_eager")
    x, lengths = torch.randn(3, 5, 6), torch.tensor([5, 2, 4])
    with torch.no_grad():
        assert_same_results(compiled(x, lengths=lengths), layer(x, lengths=lengths))


@pytest.mark.parametrize("name", ["GRU", "LSTM"])
def test_compiled_step_in_inference_is_one_graph(name):
    torch.manual_seed(0)
    layer = getattr(rnn, name)(6, 12, num_layers=2, backend="native").eval()
    compiled = torch.compile(layer.step, fullgraph=True, backend="aot_eager")
    assert_same_over_two_calls(compiled, layer.step, torch.randn(3, 6))


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_a_jit_traced_layer_runs_the_recurrence_on_new_inputs(name, steps):
    # The native fast paths are invisible to torch.jit.trace: a trace through them recorded
    # the outputs as constants (or freed memory), and with gradients it failed. While tracing
    # they step aside and the trace records the custom op.
    torch.manual_seed(0)
    layer = getattr(rnn, name)(6, 12, num_layers=2, batch_first=True, backend="native").eval()
    x, other = torch.randn(2, steps, 6), torch.randn(3, steps, 6, requires_grad=True)
    for grad in (False, True):
        with torch.set_grad_enabled(grad), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's own warnings about its limits
            traced = torch.jit.trace(layer, (x,), check_trace=False)
        assert "rnnkit::recurrence" in str(traced.inlined_graph)
        with torch.set_grad_enabled(grad):
            assert_same_results(traced(other), layer(other))
    gradient, = torch.autograd.grad(traced(other)[0].sum(), other)
    expected, = torch.autograd.grad(layer(other)[0].sum(), other)
    torch.testing.assert_close(gradient, expected, rtol=1e-6, atol=1e-6)


def assert_same_results(got, want):
    """Two ``(output, state)`` results equal to 1e-6, an LSTM's ``(h, c)`` included."""
    torch.testing.assert_close(got[0], want[0], rtol=1e-6, atol=1e-6)
    for a, b in zip(as_states(got[1]), as_states(want[1]), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def assert_same_over_two_calls(compiled, eager, x):
    """Two calls of each in inference, each fed its own state back as a decoder does."""
    compiled_state = eager_state = None
    with torch.no_grad():
        for _ in range(2):
            got, want = compiled(x, compiled_state), eager(x, eager_state)
            assert_same_results(got, want)
            compiled_state, eager_state = got[1], want[1]


def as_states(state):
    return state if isinstance(state, tuple) else (state,)


def test_the_issue_model_compiles_with_inductor_and_matches_eager():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.recurrent = rnn.GRU(16, 32, batch_first=True)
            self.head = torch.nn.Linear(32, 2)

        def forward(self, x):
            y, _ = self.recurrent(x)
            return self.head(y[:, -1])

    torch.manual_seed(0)
    model = Model()
    x = torch.randn(4, 10, 16)
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-6, atol=1e-6)
    loss_eager = torch.autograd.grad(model(x).sum(), list(model.parameters()))
    loss_compiled = torch.autograd.grad(compiled(x).sum(), list(model.parameters()))
    for a, b in zip(loss_compiled, loss_eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "options"), LAYERS)
def test_export_of_an_inference_model_matches_eager(name, options):
    layer = make_layer(name, options).eval()
    exported = torch.export.export(layer, (torch.randn(2, 5, 6),))
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        for a, b in zip(exported.module()(x), layer(x), strict=True):
            for got, want in zip(a if isinstance(a, tuple) else (a,),
                                 b if isinstance(b, tuple) else (b,), strict=True):
                torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["RNN_TANH", "GRU", "LSTM"])
def test_custom_op_registration_passes_opcheck(mode):
    torch.manual_seed(0)
    gates = {"RNN_TANH": 1, "GRU": 3, "LSTM": 4}[mode]
    hidden, size, batch, seq = 5, 3, 2, 4
    w_ih = torch.randn(gates * hidden, size, dtype=torch.float64, requires_grad=True)
    w_hh = torch.randn(gates * hidden, hidden, dtype=torch.float64, requires_grad=True)
    b_ih = torch.randn(gates * hidden, dtype=torch.float64, requires_grad=True)
    b_hh = torch.randn(gates * hidden, dtype=torch.float64, requires_grad=True)
    x = torch.randn(seq, batch, size, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(batch, hidden, dtype=torch.float64) if mode == "LSTM" else None
    lengths = torch.tensor([4, 2])
    torch.library.opcheck(traced.recurrence_op, (x, h0, c0, w_ih, w_hh, b_ih, b_hh, None,
                                                 lengths, mode, False, 1, True))
