"""layer.streamer(): online inference one native call per step, the state kept inside."""

from __future__ import annotations

import pytest
import torch

from rnnkit import engine
from rnnkit import nn as rnn

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

LAYERS = [(rnn.RNN, {}), (rnn.GRU, {}), (rnn.LSTM, {}), (rnn.LSTM, {"proj_size": 3})]


def make(cls, options, dtype=torch.float64):
    torch.manual_seed(0)
    return cls(5, 7, num_layers=2, dtype=dtype, **options)


@pytest.mark.parametrize(("cls", "options"), LAYERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_streamer_matches_forward_step_by_step(cls, options, dtype):
    layer = make(cls, options, dtype)
    x = torch.randn(3, 9, 5, dtype=dtype)  # (batch, seq, feature)
    streamer = layer.streamer(batch_size=3)
    with torch.no_grad():
        expected, state = layer(x.transpose(0, 1))
        got = torch.stack([streamer(x_t) for x_t in x.unbind(1)])
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, expected, rtol=tolerance, atol=tolerance)
    final = streamer.state
    for a, b in zip(final if isinstance(final, tuple) else (final,),
                    state if isinstance(state, tuple) else (state,), strict=True):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)


def test_outputs_are_fresh_tensors_and_the_state_a_copy():
    layer = make(rnn.GRU, {})
    streamer = layer.streamer()
    x = torch.randn(1, 5, dtype=torch.float64)
    with torch.no_grad():
        first = streamer(x)
        kept = first.clone()
        saved = streamer.state
        for _ in range(3):
            streamer(x)
    assert torch.equal(first, kept)  # later steps never write into a returned output
    assert not torch.equal(saved, streamer.state)  # the copy did not move with the stream


def test_state_can_be_saved_restored_and_moved_between_streamers():
    layer = make(rnn.LSTM, {})
    one, two = layer.streamer(), layer.streamer()
    xs = torch.randn(6, 1, 5, dtype=torch.float64)
    with torch.no_grad():
        for x in xs[:3]:
            one(x)
        two.state = one.state  # move the stream to another streamer
        rest_one = [one(x) for x in xs[3:]]
        rest_two = [two(x) for x in xs[3:]]
    for a, b in zip(rest_one, rest_two, strict=True):
        assert torch.equal(a, b)


def test_reset_zeroes_chosen_rows_only():
    layer = make(rnn.GRU, {})
    streamer = layer.streamer(batch_size=3)
    with torch.no_grad():
        streamer(torch.randn(3, 5, dtype=torch.float64))
        before = streamer.state
        streamer.reset(rows=[1])
    after = streamer.state
    assert torch.equal(after[:, 1], torch.zeros_like(after[:, 1]))
    assert torch.equal(after[:, [0, 2]], before[:, [0, 2]])
    streamer.reset()
    assert not streamer.state.any()


def test_in_place_weight_updates_are_seen_and_replaced_weights_rebuild_the_plan():
    layer = make(rnn.RNN, {})
    streamer = layer.streamer()
    x = torch.randn(1, 5, dtype=torch.float64)
    with torch.no_grad():
        layer.weight_ih_l0.mul_(0)  # in place: the version counter moves, the plan repacks
        expected, _ = layer.step(x)
        torch.testing.assert_close(streamer(x), expected, rtol=1e-12, atol=1e-12)
        streamer.reset()
        layer.weight_hh_l0.data = torch.zeros_like(layer.weight_hh_l0)  # storage replaced
        expected, _ = layer.step(x)
        torch.testing.assert_close(streamer(x), expected, rtol=1e-12, atol=1e-12)


def test_bad_input_and_state_are_refused_by_name():
    layer = make(rnn.GRU, {})
    streamer = layer.streamer(batch_size=2)
    with torch.no_grad(), pytest.raises(ValueError, match=r"x: expected shape \(2, 5\)"):
        streamer(torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"state.h: expected shape \(2, 2, 7\), got \(2, 7\)"):
        streamer.state = torch.zeros(2, 7, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="record no gradients"):
        streamer(torch.randn(2, 5, dtype=torch.float64, requires_grad=True))
    with pytest.raises(ValueError, match="unidirectional"):
        rnn.GRU(5, 7, bidirectional=True).streamer()
    with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
        layer.streamer(batch_size=0)


def test_the_call_is_native_and_its_output_an_ordinary_tensor():
    from rnnkit.engine._loader import require_native

    layer = make(rnn.LSTM, {})
    streamer = layer.streamer()
    # Each step is the C call of the engine's StreamerBase, not a Python __call__ frame.
    assert type(streamer).__call__ is require_native().StreamerBase.__call__
    x = torch.randn(1, 5, dtype=torch.float64)
    with torch.no_grad():
        y = streamer(x)
        with pytest.raises(TypeError, match=r"expected one argument, x \(batch, input\)"):
            streamer()
        with pytest.raises(TypeError, match="expected one argument"):
            streamer(x, x)
    # The output's storage (the engine's small-output allocator) grows and frees as any other.
    kept = y.clone()
    y.resize_(64, 64).fill_(1.0)
    assert torch.equal(y[0, :7], torch.ones(7, dtype=torch.float64))
    assert y.data_ptr() % 64 == 0
    del y
    assert kept.shape == (1, 7)


def change_weights(layer, route):
    """Change ``layer``'s ``weight_ih_l0`` (what a first step from a zero state reads) by one of
    the routes a user or a training loop takes."""
    generator = torch.Generator().manual_seed(3)
    new = torch.randn(layer.weight_ih_l0.shape, generator=generator,
                      dtype=layer.weight_ih_l0.dtype)
    if route == "optimizer step":
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
        with torch.enable_grad():
            layer.train()
            layer(torch.randn(2, 1, layer.input_size, dtype=new.dtype))[0].sum().backward()
            layer.eval()
        optimizer.step()
    elif route == "in-place op":
        with torch.no_grad():
            layer.weight_ih_l0.mul_(-2.0)
    elif route == "load_state_dict":
        layer.load_state_dict({**layer.state_dict(), "weight_ih_l0": new})
    elif route == "new Parameter":
        layer.weight_ih_l0 = torch.nn.Parameter(new)
    else:  # ".data =": the storage is replaced under the same parameter object
        layer.weight_ih_l0.data = new


ROUTES = ["optimizer step", "in-place op", "load_state_dict", "new Parameter", ".data ="]


@pytest.mark.parametrize("route", ROUTES)
def test_every_weight_change_route_is_seen(route):
    layer = make(rnn.GRU, {})
    streamer = layer.streamer()
    x = torch.randn(1, 5, dtype=torch.float64)
    with torch.no_grad():
        before = streamer(x)
    change_weights(layer, route)
    streamer.reset()
    with torch.no_grad():
        got = streamer(x)
        want, _ = layer(x.unsqueeze(0))
    torch.testing.assert_close(got, want[0], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(got, before)


@pytest.mark.parametrize(("cls", "options"), LAYERS)
def test_a_dtype_change_of_the_layer_carries_the_state_over(cls, options):
    layer = make(cls, options, torch.float32)
    streamer = layer.streamer(2)
    xs = torch.randn(2, 4, 5, dtype=torch.float64)  # (batch, seq, feature)
    with torch.no_grad():
        streamer(xs[:, 0].float())
        carried = streamer.state
        layer.double()
        got = torch.stack([streamer(xs[:, t]) for t in range(1, 4)])  # (seq, batch, out)
        # The float64 layer from the float32 streamer's state after step 0, values kept.
        state = (carried.double() if isinstance(carried, torch.Tensor)
                 else tuple(part.double() for part in carried))
        want, _ = layer(xs[:, 1:].transpose(0, 1), state)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    layer.float()  # and back
    with torch.no_grad():
        assert streamer(xs[:, 0].float()).dtype == torch.float32
