"""The kernels' packed layout (``offsets``): PackedSequence.data in and out, no padding.

The packed results must match the padded path with lengths (same recurrence, rows gathered
into the packed order), torch.nn's packed kernels, and each other across thread counts; and
the native boundary must refuse every offsets tensor that could make a kernel address a row
outside xg, y or the saved tensors.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit import engine
from rnnkit.engine import checks, ops
from rnnkit.engine._loader import require_native

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
GATES = checks.GATES


def layer_weights(mode: str, input_size: int, hidden: int, proj: int = 0, seed: int = 0,
                  dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    gates = GATES[mode] * hidden
    out = proj or hidden

    def draw(*shape):
        return (torch.rand(*shape, generator=generator, dtype=dtype) - 0.5) * 0.8

    return (draw(gates, input_size), draw(gates, out), draw(gates), draw(gates),
            draw(out, hidden) if proj else None)


def packed_case(lengths: list[int], input_size: int, dtype=torch.float64, seed: int = 1):
    """``(padded x (T, B, I) sorted longest first, lengths, data, offsets, batch_sizes)``."""
    generator = torch.Generator().manual_seed(seed)
    lengths_t = torch.tensor(sorted(lengths, reverse=True))
    x = torch.randn(int(lengths_t[0]), len(lengths), input_size, generator=generator,
                    dtype=dtype)
    packed = pack_padded_sequence(x, lengths_t, enforce_sorted=True)
    return x, lengths_t, packed.data, ops.packed_offsets(packed.batch_sizes), packed.batch_sizes


def initial_states(mode, batch, hidden, out, dtype=torch.float64, seed=2):
    generator = torch.Generator().manual_seed(seed)
    h0 = torch.randn(batch, out, generator=generator, dtype=dtype)
    c0 = torch.randn(batch, hidden, generator=generator, dtype=dtype) if mode == "LSTM" else None
    return h0, c0


def gathered(padded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Rows of a padded ``(T, B, F)`` output in the packed layout."""
    return pack_padded_sequence(padded, lengths, enforce_sorted=True).data


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [[7, 5, 5, 3, 1, 1], [4, 4, 4], [1], [9, 1]])
def test_packed_forward_matches_padded_lengths(mode, reverse, lengths, isa):
    hidden, input_size = 5, 3
    x, lengths_t, data, offsets, _ = packed_case(lengths, input_size)
    weights = layer_weights(mode, input_size, hidden)
    h0, c0 = initial_states(mode, len(lengths), hidden, hidden)
    with torch.no_grad():
        y, h_n, c_n = ops.packed_recurrence(mode, data, offsets, h0, c0, *weights, reverse)
        y_ref, h_ref, c_ref = engine.recurrence(mode, x, h0, c0, *weights, lengths_t, reverse)
    assert y.shape == (data.shape[0], hidden)
    torch.testing.assert_close(y, gathered(y_ref, lengths_t), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_n, h_ref, rtol=1e-12, atol=1e-12)
    if mode == "LSTM":
        torch.testing.assert_close(c_n, c_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_packed_projection_matches_torch(reverse):
    hidden, proj, input_size = 6, 3, 4
    lengths = [6, 4, 4, 2, 1]
    _, _, data, offsets, batch_sizes = packed_case(lengths, input_size)
    weights = layer_weights("LSTM", input_size, hidden, proj)
    h0, c0 = initial_states("LSTM", len(lengths), hidden, proj)
    reference = torch.nn.LSTM(input_size, hidden, proj_size=proj, dtype=torch.float64,
                              bidirectional=reverse)
    suffix = "_reverse" if reverse else ""
    with torch.no_grad():
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"),
                               weights, strict=True):
            getattr(reference, f"{name}_l0{suffix}").copy_(value)
        index = 1 if reverse else 0
        h0s = torch.zeros(2 if reverse else 1, len(lengths), proj, dtype=torch.float64)
        c0s = torch.zeros(2 if reverse else 1, len(lengths), hidden, dtype=torch.float64)
        h0s[index], c0s[index] = h0, c0
        out, (h_ref, c_ref) = reference(
            torch.nn.utils.rnn.PackedSequence(data, batch_sizes), (h0s, c0s))
        y, h_n, c_n = ops.packed_recurrence("LSTM", data, offsets, h0, c0, *weights, reverse)
    torch.testing.assert_close(y, out.data[:, index * proj:(index + 1) * proj])
    torch.testing.assert_close(h_n, h_ref[index])
    torch.testing.assert_close(c_n, c_ref[index])


@pytest.mark.parametrize(("mode", "proj"), [("LSTM", 0), ("LSTM", 3), ("GRU", 0),
                                            ("RNN_TANH", 0)])
@pytest.mark.parametrize("reverse", [False, True])
def test_packed_gradients_match_padded_lengths(mode, reverse, proj):
    hidden, input_size = 5, 4
    lengths = [6, 5, 5, 2, 1, 1]
    x, lengths_t, data, offsets, _ = packed_case(lengths, input_size)
    weights = layer_weights(mode, input_size, hidden, proj)
    h0, c0 = initial_states(mode, len(lengths), hidden, proj or hidden)
    generator = torch.Generator().manual_seed(5)
    dy = torch.randn(data.shape[0], proj or hidden, generator=generator, dtype=torch.float64)
    dh = torch.randn(h0.shape, generator=generator, dtype=torch.float64)

    def grads(packed: bool):
        xs, h = x.clone().requires_grad_(True), h0.clone().requires_grad_(True)
        c = None if c0 is None else c0.clone().requires_grad_(True)
        w = [None if t is None else t.clone().requires_grad_(True) for t in weights]
        leaves = [t for t in (xs, h, c, *w) if t is not None]
        if packed:
            source = pack_padded_sequence(xs, lengths_t, enforce_sorted=True).data
            y, h_n, _ = ops.packed_recurrence(mode, source, offsets, h, c, *w, reverse)
        else:
            y_pad, h_n, _ = engine.recurrence(mode, xs, h, c, *w, lengths_t, reverse)
            y = gathered(y_pad, lengths_t)
        loss = (y * dy).sum() + (h_n * dh).sum()
        return torch.autograd.grad(loss, leaves)

    for ours, reference in zip(grads(True), grads(False), strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_packed_create_graph_gradients_are_differentiable(mode):
    hidden, input_size = 3, 2
    _, _, data, offsets, _ = packed_case([4, 2, 1], input_size)
    weights = layer_weights(mode, input_size, hidden)
    h0, c0 = initial_states(mode, 3, hidden, hidden)
    source = data.clone().requires_grad_(True)
    w_ih = weights[0].clone().requires_grad_(True)
    y, h_n, _ = ops.packed_recurrence(mode, source, offsets, h0, c0, w_ih, *weights[1:], False)
    (grad,) = torch.autograd.grad(y.square().sum() + h_n.sum(), source, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), w_ih)
    assert second.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda d: ops.packed_recurrence(mode, d, offsets, h0, c0, *weights, False)[0],
        (source.detach().clone().requires_grad_(True),))


# 10 rows: threads split the units; 40 rows (>= 16 per thread): a kernel may split rows.
SPREADS = {10: [40, 33, 33, 20, 9, 9, 5, 1, 1, 1],
           40: torch.randint(1, 30, (40,), generator=torch.Generator().manual_seed(3)).tolist()}


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("batch", sorted(SPREADS))
def test_packed_bits_equal_across_thread_counts(mode, reverse, batch):
    hidden, input_size = 48, 8
    lengths = SPREADS[batch]
    _, _, data, offsets, _ = packed_case(lengths, input_size, dtype=torch.float32)
    weights = layer_weights(mode, input_size, hidden, dtype=torch.float32)
    h0, c0 = initial_states(mode, len(lengths), hidden, hidden, dtype=torch.float32)
    xg = ops._input_projection(data, weights[0], None)
    bias, b_hn = ops._gate_bias(mode, data, weights[2], weights[3], xg.shape[1], hidden)
    results = []
    for threads in (1, 2, 3):
        plan = ops._Plan(mode, hidden, hidden, None, reverse, threads, offsets)
        y, h_n, c_n, saved = ops._run_forward(plan, xg, bias, h0, c0, weights[1], b_hn, None,
                                              save=True)
        dy = torch.ones_like(y)
        backward = ops._run_backward(plan, dy, torch.zeros_like(h_n),
                                     None if c_n is None else torch.zeros_like(c_n), y, h0, c0,
                                     weights[1], None, saved[0], saved[1])
        results.append([y, h_n, *[t for t in (c_n, *backward) if t is not None]])
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.equal(a, b)


# ----------------------------------------------------------------- the boundary's checks
BATCH, HIDDEN, GATE_WIDTH = 3, 4, 4 * 4


def packed_forward_kwargs(offsets: torch.Tensor, rows: int = 6, save: bool = True) -> dict:
    """Arguments of ``_native.forward`` for an LSTM in the packed layout."""
    new = torch.zeros
    saved_rows = rows if save else BATCH
    return dict(
        mode=checks.MODE_IDS["LSTM"], reverse=False, save=save, threads=1, pack=True,
        xg=torch.randn(rows, GATE_WIDTH), bias=torch.randn(GATE_WIDTH), h0=new(BATCH, HIDDEN),
        c0=new(BATCH, HIDDEN), w_hh=torch.randn(GATE_WIDTH, HIDDEN), b_hn=None, w_hr=None,
        lengths=None, y=new(rows, HIDDEN), h_n=new(BATCH, HIDDEN), c_n=new(BATCH, HIDDEN),
        gates=new(saved_rows, GATE_WIDTH), aux=new(saved_rows, HIDDEN), m=None,
        work=new(3 * BATCH * HIDDEN), offsets=offsets)


def packed_backward_kwargs(offsets: torch.Tensor, rows: int = 6) -> dict:
    forward = packed_forward_kwargs(torch.tensor([0, 3, 5, 6]), rows)
    require_native().forward(**forward)
    new = torch.zeros
    return dict(
        mode=checks.MODE_IDS["LSTM"], reverse=False, threads=1, w_hh=forward["w_hh"], w_hr=None,
        dy=torch.randn(rows, HIDDEN), dh_n=new(BATCH, HIDDEN), dc_n=new(BATCH, HIDDEN),
        y=forward["y"], h0=forward["h0"], c0=forward["c0"], gates=forward["gates"],
        aux=forward["aux"], lengths=None, dgx=new(rows, GATE_WIDTH), dgh=new(rows, GATE_WIDTH),
        dh0=new(BATCH, HIDDEN), dc0=new(BATCH, HIDDEN), dhtot=None,
        work=new(3 * BATCH * HIDDEN + 2 * BATCH * HIDDEN), offsets=offsets)


def test_packed_boundary_runs_valid_offsets():
    kwargs = packed_forward_kwargs(torch.tensor([0, 3, 5, 6]))
    require_native().forward(**kwargs)
    assert kwargs["y"].abs().min() > 0  # every packed row written
    backward = packed_backward_kwargs(torch.tensor([0, 3, 5, 6]))
    require_native().backward(**backward)
    assert backward["dgx"].abs().sum(1).min() > 0


BAD_OFFSETS = {
    "first not zero": (torch.tensor([1, 3, 5, 6]), r"first offset to be 0, got 1"),
    "decreasing": (torch.tensor([0, 3, 2, 6]), r"row count .* in \[0, 3\] .*got -1 at step 1"),
    "count above batch": (torch.tensor([0, 4, 5, 6]), r"in \[0, 3\] \(the batch\), got 4"),
    "increasing counts": (torch.tensor([0, 2, 5, 6]), r"non-increasing row counts .*2 then 3"),
    "past the rows": (torch.tensor([0, 3, 6, 9]), r"at most 6 \(the rows of (xg|gates)\), got 9"),
    "huge": (torch.tensor([0, 3, 2**62, 2**62 + 1]), r"row count"),
    "int32": (torch.tensor([0, 3, 5, 6], dtype=torch.int32), r"expected an int64 tensor"),
    "float": (torch.tensor([0.0, 3.0, 5.0, 6.0]), r"expected an int64 tensor"),
    "2-D": (torch.tensor([[0, 3, 5, 6]]), r"expected an int64 tensor \(steps \+ 1,\)"),
    "too short": (torch.tensor([0]), r"steps >= 1, got Long of shape \(1,\)"),
    "non-contiguous": (torch.tensor([0, 9, 3, 9, 5, 9, 6, 9])[::2], r"contiguous"),
    "meta": (torch.tensor([0, 3, 5, 6], device="meta"), r"offsets"),
    "not a tensor": ([0, 3, 5, 6], r"offsets: expected a tensor, got list"),
}


@pytest.mark.parametrize("case", sorted(BAD_OFFSETS))
@pytest.mark.parametrize("entry", ["forward", "backward"])
def test_boundary_refuses_bad_offsets(case, entry):
    offsets, message = BAD_OFFSETS[case]
    if entry == "forward":
        kwargs, call, output = packed_forward_kwargs(offsets), require_native().forward, "y"
    else:
        kwargs, call = packed_backward_kwargs(offsets), require_native().backward
        output = "dgx"
    before = kwargs[output].clone()
    with pytest.raises((ValueError, TypeError), match=message):
        call(**kwargs)
    assert torch.equal(kwargs[output], before)  # the kernel never ran


def test_boundary_refuses_truncated_offsets_storage():
    offsets = torch.tensor([0, 3, 5, 6])
    offsets.untyped_storage().resize_(8)
    with pytest.raises(ValueError, match=r"offsets: the tensor's storage"):
        require_native().forward(**packed_forward_kwargs(offsets))


def test_boundary_refuses_packed_shapes_that_do_not_fit():
    offsets = torch.tensor([0, 3, 5, 6])
    kwargs = packed_forward_kwargs(offsets)
    kwargs["y"] = torch.zeros(5, HIDDEN)  # fewer rows than xg
    with pytest.raises(ValueError, match=r"y: expected shape \(6, 4\), got \(5, 4\)"):
        require_native().forward(**kwargs)
    kwargs = packed_forward_kwargs(offsets)
    kwargs["xg"] = torch.randn(2, 3, GATE_WIDTH)
    with pytest.raises(ValueError, match=r"with offsets, expected xg \(rows, gates\*hidden\)"):
        require_native().forward(**kwargs)
    kwargs = packed_forward_kwargs(offsets, save=False)
    kwargs["gates"] = torch.zeros(6, GATE_WIDTH)  # without save: one step's scratch (batch)
    with pytest.raises(ValueError, match=r"gates: expected shape \(3, 16\)"):
        require_native().forward(**kwargs)
    kwargs = packed_forward_kwargs(offsets)
    kwargs["lengths"] = torch.tensor([3, 2, 1])
    with pytest.raises(ValueError, match=r"lengths, offsets: expected at most one"):
        require_native().forward(**kwargs)


def test_rows_past_the_last_offset_are_never_written():
    """A short last offset leaves rows past it untouched: the kernel writes nothing beyond."""
    kwargs = packed_forward_kwargs(torch.tensor([0, 3, 4]), rows=6)
    kwargs["y"].fill_(7.0)
    require_native().forward(**kwargs)
    assert torch.equal(kwargs["y"][4:], torch.full((2, HIDDEN), 7.0))
    assert not torch.equal(kwargs["y"][:4], torch.full((4, HIDDEN), 7.0))


def test_packed_recurrence_argument_errors():
    weights = layer_weights("GRU", 2, 3)
    data = torch.randn(4, 2, dtype=torch.float64)
    h0 = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"offsets: expected a 1-D int64 tensor"):
        ops.packed_recurrence("GRU", data, torch.tensor([0, 2, 4], dtype=torch.int32), h0, None,
                              *weights, False)
    with pytest.raises(ValueError, match=r"the last equal to data's rows \(4\)"):
        ops.packed_recurrence("GRU", data, torch.tensor([0, 2, 3]), h0, None, *weights, False)
    with pytest.raises(ValueError, match=r"data: expected a 2-D tensor"):
        ops.packed_recurrence("GRU", data.unsqueeze(0), torch.tensor([0, 2, 4]), h0, None,
                              *weights, False)
    with pytest.raises(ValueError, match=r"offsets: expected non-increasing row counts"):
        ops.packed_recurrence("GRU", data, torch.tensor([0, 1, 4]), torch.zeros(3, 3,
                              dtype=torch.float64), None, *weights, False)
