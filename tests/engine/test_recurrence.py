"""Native engine vs torch.nn: outputs, final states and every gradient."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit import engine
from rnnkit.engine import ops

from .reference import compare, direction_weights, engine_direction, make_module, torch_direction

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


@pytest.fixture(params=[1, 2])
def threads(request, monkeypatch):
    """Force the thread count, whatever the size heuristic would pick."""
    monkeypatch.setattr(ops, "choose_threads", lambda *args: request.param)
    monkeypatch.setattr(torch, "get_num_threads", lambda: max(request.param, 1))
    return request.param


@st.composite
def configurations(draw):
    mode = draw(st.sampled_from(MODES))
    seq_len = draw(st.integers(1, 6))
    batch = draw(st.integers(1, 4))
    with_lengths = draw(st.booleans())
    lengths = None
    if with_lengths:
        values = draw(st.lists(st.integers(0, seq_len), min_size=batch, max_size=batch))
        lengths = torch.tensor(values, dtype=torch.int64)
    hidden = draw(st.integers(1, 19))
    with_proj = mode == "LSTM" and hidden > 1 and draw(st.booleans())
    return {
        "mode": mode,
        "seq_len": seq_len,
        "batch": batch,
        "input_size": draw(st.integers(1, 5)),
        "hidden": hidden,
        "bias": draw(st.booleans()),
        "proj": draw(st.integers(1, hidden - 1)) if with_proj else 0,
        "lengths": lengths,
        "reverse": draw(st.booleans()),
        "dtype": draw(st.sampled_from([torch.float64, torch.float32])),
        "seed": draw(st.integers(0, 1000)),
    }


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=configurations())
def test_matches_torch_over_property_grid(config, isa, threads):
    compare(**config)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hidden", [1, 7, 33, 100])
def test_odd_hidden_sizes_two_threads(mode, hidden, threads):
    compare(mode, seq_len=5, batch=3, input_size=4, hidden=hidden, dtype=torch.float32,
            lengths=torch.tensor([5, 0, 3]), reverse=hidden % 2 == 1)


@pytest.mark.parametrize("mode", MODES)
def test_batch_one_single_step(mode, isa):
    compare(mode, seq_len=1, batch=1, input_size=3, hidden=16)
    compare(mode, seq_len=1, batch=1, input_size=3, hidden=16, reverse=True,
            lengths=torch.tensor([1]))


@pytest.mark.parametrize("mode", MODES)
def test_long_sequence(mode):
    compare(mode, seq_len=1000, batch=2, input_size=3, hidden=8, lengths=torch.tensor([1000, 517]),
            reverse=True)
    compare(mode, seq_len=1000, batch=2, input_size=3, hidden=8, dtype=torch.float32)


@pytest.mark.parametrize("mode", MODES)
def test_large_batch_uses_full_tiles(mode, isa, threads):
    compare(mode, seq_len=4, batch=37, input_size=20, hidden=40, dtype=torch.float32,
            proj=24 if mode == "LSTM" else 0, lengths=torch.arange(37) % 5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
def test_mostly_padded_batch_projects_each_row_alone(mode, reverse, isa):
    # Most of the padded block is padding, so the input projection runs row by row over each
    # row's valid steps (ops._input_projection); x is batch-first memory seen time-major.
    lengths = torch.tensor([3, 40, 17, 0, 9, 1])
    assert int(lengths.sum()) < ops.ROW_PROJECTION_MAX_FILL * 40 * 6

    def batch_first(generator):
        return torch.randn(6, 40, 5, generator=generator).transpose(0, 1)

    compare(mode, seq_len=40, batch=6, input_size=5, hidden=12, dtype=torch.float32,
            proj=7 if mode == "LSTM" else 0, lengths=lengths, reverse=reverse,
            make_x=batch_first)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
def test_unsorted_inference_reads_rows_in_place(mode, reverse, isa):
    # Inference with unsorted lengths projects each row of x where it lies (no sorted copy):
    # same results as torch.nn and as the autograd path, which sorts x first.
    module = make_module(mode, 5, 12, proj=7 if mode == "LSTM" else 0, dtype=torch.float32)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(6, 40, 5, generator=generator).transpose(0, 1)
    out_size = 7 if mode == "LSTM" else 12
    h0 = torch.randn(6, out_size, generator=generator)
    c0 = torch.randn(6, 12, generator=generator) if mode == "LSTM" else None
    for lengths in (torch.tensor([3, 40, 17, 0, 9, 1]), torch.tensor([33, 40, 38, 31, 40, 36])):
        with torch.no_grad():
            expected = torch_direction(module, mode, x, h0, c0, lengths, reverse)
            actual = engine_direction(module, mode, x, h0, c0, lengths, reverse)
        with_graph = engine_direction(module, mode, x.clone().requires_grad_(), h0, c0, lengths,
                                      reverse)
        for a, e, g in zip(actual, expected, with_graph, strict=True):
            if e is None:
                continue
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(a, g.detach(), rtol=1e-6, atol=1e-6)


def test_row_projection_equals_the_padded_block_projection(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(30, 5, 4)
    w_ih = torch.randn(24, 4)
    lengths = torch.tensor([30, 2, 11, 0, 7])
    by_row = ops._input_projection(x, w_ih, lengths)
    monkeypatch.setattr(ops, "ROW_PROJECTION_MAX_FILL", 0.0)
    whole = ops._input_projection(x, w_ih, lengths)
    valid = torch.arange(30).unsqueeze(1) < lengths.unsqueeze(0)
    torch.testing.assert_close(by_row[valid], whole[valid], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_non_contiguous_input(mode):
    def transposed_batch_first(generator):
        x = torch.randn(3, 6, 10, generator=generator, dtype=torch.float64)
        return x.transpose(0, 1)[:, :, ::2]  # (6, 3, 5), strided in every dimension

    compare(mode, seq_len=6, batch=3, input_size=5, hidden=9, make_x=transposed_batch_first)


def test_non_contiguous_weights_and_states():
    torch.manual_seed(0)
    hidden, batch = 6, 3
    w_ih = torch.randn(5, 4 * hidden, dtype=torch.float64).t()
    w_hh = torch.randn(hidden, 4 * hidden, dtype=torch.float64).t()
    state = torch.randn(batch, 2 * hidden, dtype=torch.float64)
    h0, c0 = state[:, ::2], state[:, 1::2]
    x = torch.randn(4, batch, 5, dtype=torch.float64)
    got = engine.recurrence("LSTM", x, h0, c0, w_ih, w_hh, None, None, None, None, False)
    want = engine.recurrence("LSTM", x, h0.contiguous(), c0.contiguous(), w_ih.contiguous(),
                             w_hh.contiguous(), None, None, None, None, False)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("mode", MODES)
def test_cell_step_matches_recurrence(mode):
    torch.manual_seed(1)
    hidden, batch = 12, 2
    gates = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    w_ih, w_hh = torch.randn(gates * hidden, 3), torch.randn(gates * hidden, hidden) * 0.3
    b_ih, b_hh = torch.randn(gates * hidden), torch.randn(gates * hidden)
    x = torch.randn(5, batch, 3)
    h = torch.zeros(batch, hidden)
    c = torch.zeros(batch, hidden) if mode == "LSTM" else None
    y, h_n, c_n = engine.recurrence(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, None, None, False)
    with torch.no_grad():
        for t in range(5):
            h, c = engine.cell_step(mode, x[t], h, c, w_ih, w_hh, b_ih, b_hh, None)
            torch.testing.assert_close(h, y[t], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h, h_n, rtol=1e-5, atol=1e-6)
    if mode == "LSTM":
        torch.testing.assert_close(c, c_n, rtol=1e-5, atol=1e-6)


def test_cell_step_is_differentiable():
    torch.manual_seed(2)
    w_ih = torch.randn(9, 2, dtype=torch.float64, requires_grad=True)
    w_hh = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)

    def step(x, h, w_ih, w_hh):
        return engine.cell_step("GRU", x, h, None, w_ih, w_hh, None, None, None)[0]

    assert torch.autograd.gradcheck(step, (x, h, w_ih, w_hh))


def test_rows_of_length_zero_keep_initial_state():
    torch.manual_seed(3)
    x = torch.randn(4, 2, 3)
    h0, c0 = torch.randn(2, 5), torch.randn(2, 5)
    w_ih, w_hh = torch.randn(20, 3), torch.randn(20, 5)
    for reverse in (False, True):
        y, h_n, c_n = engine.recurrence("LSTM", x, h0, c0, w_ih, w_hh, None, None, None,
                                        torch.tensor([0, 4]), reverse)
        assert torch.equal(y[:, 0], torch.zeros(4, 5))
        assert torch.equal(h_n[0], h0[0]) and torch.equal(c_n[0], c0[0])
        assert not torch.equal(h_n[1], h0[1])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch", [1, 3])
def test_native_step_matches_torch_cells(mode, batch, isa):
    """The no-grad single-step kernel (projection included) against torch.nn on one step."""
    for proj in ([0, 5] if mode == "LSTM" else [0]):
        for bias in (True, False):
            compare_step(mode, batch, proj, bias)


def compare_step(mode, batch, proj, bias):
    torch.manual_seed(batch + proj)
    module = make_module(mode, 7, 33, bias=bias, proj=proj, dtype=torch.float64)
    weights = direction_weights(module, False)
    x = torch.randn(1, batch, 7, dtype=torch.float64)
    h0 = torch.randn(batch, proj or 33, dtype=torch.float64)
    c0 = torch.randn(batch, 33, dtype=torch.float64) if mode == "LSTM" else None
    with torch.no_grad():
        _, want_h, want_c = torch_direction(module, mode, x, h0, c0, None, False)
        h, c = engine.cell_step(mode, x[0], h0, c0, *weights)
    torch.testing.assert_close(h, want_h, rtol=1e-10, atol=1e-12)
    if mode == "LSTM":
        torch.testing.assert_close(c, want_c, rtol=1e-10, atol=1e-12)
