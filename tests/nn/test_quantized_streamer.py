"""QuantizedRecurrent.streamer(): int8 streaming equals the int8 layer's whole-sequence forward
step by step, keeps an ordinary state, and repacks when a float weight changes."""

from __future__ import annotations

import copy

import pytest
import torch

import rnnkit.nn as rnn
from rnnkit import engine

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

LAYERS = [
    ("LSTM", {}), ("LSTM", {"proj_size": 5}), ("GRU", {}), ("RNN", {}),
    ("RNN", {"nonlinearity": "relu"}),
]


def make_int8(kind, **options):
    torch.manual_seed(0)
    return rnn.quantize_int8(getattr(rnn, kind)(12, 24, **options).eval())


def stream(streamer, x):
    """Outputs ``(seq, batch, out)`` of feeding ``x (seq, batch, input)`` step by step."""
    return torch.stack([streamer(x_t) for x_t in x])


@pytest.mark.parametrize(("kind", "options"), LAYERS)
@pytest.mark.parametrize("num_layers", [1, 3])
def test_streamed_steps_equal_the_whole_sequence(kind, options, num_layers):
    int8 = make_int8(kind, num_layers=num_layers, **options)
    x = torch.randn(11, 3, 12)
    streamer = int8.streamer(3)
    with torch.no_grad():
        want, want_state = int8(x)
    got = stream(streamer, x)
    # Same kernels on length-1 sequences, integer sums exact: equal, not merely close.
    assert torch.equal(got, want)
    if kind == "LSTM":
        assert all(torch.equal(a, b) for a, b in zip(streamer.state, want_state, strict=True))
    else:
        assert torch.equal(streamer.state, want_state)
    assert not got.requires_grad


def test_state_is_an_ordinary_tensor_that_can_be_moved_and_reset():
    int8 = make_int8("LSTM", num_layers=2)
    x = torch.randn(6, 2, 12)
    first = int8.streamer(2)
    head = stream(first, x[:3])
    saved = first.state
    second = int8.streamer(2)
    second.state = saved
    tail = stream(second, x[3:])
    with torch.no_grad():
        want, _ = int8(x)
    assert torch.equal(torch.cat([head, tail]), want)
    # Keeping the returned state: later steps do not write into it.
    h = saved[0]
    kept = h.clone()
    stream(first, x[3:])
    assert torch.equal(h, kept)
    # Row 0 restarts: it follows a fresh sequence, row 1 carries on.
    second.reset([0])
    y = second(x[0])
    with torch.no_grad():
        fresh, _ = int8(x[:1, :1])
    assert torch.equal(y[:1], fresh[0])


def test_weight_changes_are_seen():
    int8 = make_int8("GRU")
    x = torch.randn(4, 1, 12)
    streamer = int8.streamer(1)
    before = streamer(x[0])
    parameter = int8.weight_ih_l0  # the first step from a zero state reads W_ih, not W_hh
    # In place through the parameter (as an optimizer step does): the version counter moves.
    with torch.no_grad():
        parameter.mul_(-1.0)
    streamer.reset()
    after = streamer(x[0])
    with torch.no_grad():
        want, _ = int8(x[:1])
    assert torch.equal(after, want[0])
    assert not torch.equal(after, before)
    # Replaced storage: the data pointer moves.
    parameter.data = parameter.data.clone() * 0.5
    streamer.reset()
    replaced = streamer(x[0])
    with torch.no_grad():
        want, _ = int8(x[:1])
    assert torch.equal(replaced, want[0])


def test_refusals_name_the_argument():
    with pytest.raises(ValueError, match="bidirectional"):
        make_int8("GRU", bidirectional=True).streamer(1)
    int8 = make_int8("RNN")
    with pytest.raises(ValueError, match="batch_size"):
        int8.streamer(0)
    streamer = int8.streamer(2)
    with pytest.raises(ValueError, match="x: expected shape"):
        streamer(torch.randn(3, 12))
    with pytest.raises(TypeError, match="x: expected dtype"):
        streamer(torch.randn(2, 12, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="requires grad"):
        streamer(torch.randn(2, 12, requires_grad=True))


def _twin_streaming():
    """A float GRU, its in-place int8 twin, one step's input, the twin's streamer and its
    first output."""
    torch.manual_seed(0)
    layer = rnn.GRU(12, 24).eval()
    int8 = rnn.quantize_int8(layer, inplace=True)
    x = torch.randn(1, 1, 12)
    streamer = int8.streamer(1)
    return layer, int8, x, streamer, streamer(x[0])


@pytest.mark.parametrize("route", ["optimizer step", "in-place op", "load_state_dict"])
def test_weight_changes_through_the_float_model_are_seen(route):
    """The int8 twin shares the float layer's parameters: training the float layer, changing a
    weight in place or loading a checkpoint into either repacks before the next step."""
    from tests.nn.test_streamer import change_weights

    layer, int8, x, streamer, before = _twin_streaming()
    change_weights(int8 if route == "load_state_dict" else layer, route)
    streamer.reset()
    got = streamer(x[0])
    with torch.no_grad():
        want, _ = int8(x)
    assert torch.equal(got, want[0])
    assert not torch.equal(got, before)


@pytest.mark.parametrize("owner", ["int8 twin", "float layer"])
def test_a_parameter_replaced_on_either_layer_is_shared_and_used(owner):
    """``weight = nn.Parameter(...)`` on the int8 twin or on its float layer: both keep the
    same parameter, and the twin's forward and live streamer run the new weight."""
    layer, int8, x, streamer, before = _twin_streaming()
    new = torch.nn.Parameter(torch.randn(layer.weight_ih_l0.shape))
    (int8 if owner == "int8 twin" else layer).weight_ih_l0 = new
    with torch.no_grad():
        got, _ = int8(x)
    assert layer.weight_ih_l0 is new and dict(int8.named_parameters())["weight_ih_l0"] is new
    fresh = rnn.quantize_int8(copy.deepcopy(layer))
    with torch.no_grad():
        want, _ = fresh(x)
    assert torch.equal(got, want)
    streamer.reset()
    assert torch.equal(streamer(x[0]), want[0])
    assert not torch.equal(want[0], before)


def test_the_streamer_does_not_read_the_layers_packed_tensors_after_building():
    """The twin's packed weights stay Python attributes; resizing or overwriting them does not
    reach a live streamer (its plan checked and copied them), and a later weight change still
    repacks from the float weights."""
    int8 = make_int8("LSTM", num_layers=2)
    x = torch.randn(5, 1, 12)
    streamer = int8.streamer(1)
    with torch.no_grad():
        want, _ = int8(x)
    for ih, hh, _hr, bias, _b_hn in int8._packed:
        ih.weight.resize_(0)
        hh.rowsum.fill_(2**30)
        bias.set_(torch.empty(1))
    assert torch.equal(stream(streamer, x), want)
    with torch.no_grad():
        int8.weight_hh_l1.mul_(0.5)
        want, _ = rnn.quantize_int8(copy.deepcopy(int8._float))(x)
    streamer.reset()
    assert torch.equal(stream(streamer, x), want)


def test_state_buffers_changed_from_python_are_refused_not_read():
    int8 = make_int8("GRU")
    streamer = int8.streamer(1)
    x = torch.randn(1, 12)
    streamer(x)
    streamer._h.resize_(1, 1, 8)
    with pytest.raises(ValueError, match=r"h: expected shape \(1, 1, 24\), got \(1, 1, 8\)"):
        streamer(x)
    streamer._h.resize_(0)
    with pytest.raises(ValueError, match=r"h: expected a tensor \(layers, batch, out\), got "
                                         r"shape \(0,\)"):
        streamer(x)
    streamer._h = torch.zeros(1, 1, 24)
    streamer._h_next = torch.zeros(1, 1, 24, dtype=torch.float64)
    with pytest.raises(TypeError, match="h_n: expected dtype Float"):
        streamer(x)
    streamer._h_next = streamer._h
    with pytest.raises(ValueError, match="h_n, c_n: expected memory apart"):
        streamer(x)
