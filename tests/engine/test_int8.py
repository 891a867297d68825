"""int8 kernels: bit-exact against a NumPy model of the scheme on every ISA, within the
quantisation error bound of float32, independent of the thread count, and refusing bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import engine
from rnnkit.engine import ops
from rnnkit.engine import quantized as q8

from . import int8_reference as ref

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

CASES = [("RNN_TANH", 0), ("RNN_RELU", 0), ("GRU", 0), ("LSTM", 0), ("LSTM", 7)]
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def weights(mode, input_size, hidden, proj=0, seed=0, bias=True):
    """``(w_ih, w_hh, b_ih, b_hh, w_hr)`` float32 tensors, torch's layout."""
    g = torch.Generator().manual_seed(seed)
    rows, out = GATES[mode] * hidden, proj or hidden

    def uniform(*shape):
        return (torch.rand(*shape, generator=g) * 2 - 1) / hidden ** 0.5

    return (uniform(rows, input_size), uniform(rows, out), uniform(rows) if bias else None,
            uniform(rows) if bias else None, uniform(proj, hidden) if proj else None)


def run_int8(mode, x, h0, c0, w, lengths=None, reverse=False, threads=None):
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    gates, hidden = GATES[mode], w_hh.shape[0] // GATES[mode]
    bias, b_hn = ops._gate_bias(mode, x, b_ih, b_hh, gates * hidden, hidden)
    return q8.recurrence(mode, x, h0, c0, q8.pack(w_ih, gates), q8.pack(w_hh, gates),
                         None if w_hr is None else q8.pack(w_hr), bias, b_hn, lengths, reverse,
                         threads)


def inputs(mode, seq_len, batch, input_size, hidden, proj=0, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(seq_len, batch, input_size, generator=g)
    h0 = torch.randn(batch, proj or hidden, generator=g) * 0.5
    c0 = torch.randn(batch, hidden, generator=g) * 0.5 if mode == "LSTM" else None
    return x, h0, c0


def numpy(t):
    return None if t is None else t.numpy()


def test_rational_tanh_is_within_a_micro_of_tanh():
    x = np.linspace(-12, 12, 200001, dtype=np.float32)
    assert np.abs(ref.tanh_r(x).astype(np.float64) - np.tanh(x.astype(np.float64))).max() < 2e-6
    s = ref.sigmoid_r(x).astype(np.float64)
    assert np.abs(s - 1 / (1 + np.exp(-x.astype(np.float64)))).max() < 2e-6


def test_packing_holds_the_quantised_rows():
    w = weights("LSTM", 13, 21)[0]
    packed = q8.pack(w, gates=4)
    q, scale = ref.quantize_weight(w.numpy())
    # (Rp/16, Kp/4, 16, 4) -> (Rp, Kp), then the real rows of each gate segment
    dense = packed.weight.permute(0, 2, 1, 3).reshape(4 * 32, 16).numpy()
    rows = np.concatenate([dense[g * 32:g * 32 + 21, :13] for g in range(4)])
    assert np.array_equal(rows, q)
    assert not dense[:, 13:].any() and not dense[21:32].any()  # zero padding
    assert np.array_equal(packed.scale.view(4, 32)[:, :21].reshape(-1).numpy(), scale)
    assert np.array_equal(packed.rowsum.numpy(), dense.astype(np.int64).sum(1))


@pytest.mark.parametrize("shape", [(1, 5, 3), (7, 37, 45), (40, 64, 33), (7, 37, 130), (9, 8, 200)])
def test_linear_matches_the_numpy_scheme_exactly(shape, isa):
    m, k, r = shape
    g = torch.Generator().manual_seed(m + k)
    x = torch.randn(m, k, generator=g) * 3 + 0.5
    w, bias = torch.randn(r, k, generator=g), torch.randn(r, generator=g)
    got = q8.linear(x, q8.pack(w), bias)
    wq, ws = ref.quantize_weight(w.numpy())
    want = ref.product(x.numpy(), wq, ws) + bias.numpy()
    assert np.array_equal(got.numpy(), want)


def test_linear_error_is_within_the_quantisation_bound():
    """|x.w - x^.w^| <= sum_k |x_k| s_w / 2 + |w_k| s_a / 2 + s_a s_w / 4 (rounding to
    nearest leaves at most half a step on each factor), plus float32 rounding."""
    g = torch.Generator().manual_seed(5)
    x, w = torch.randn(16, 96, generator=g), torch.randn(50, 96, generator=g)
    got = q8.linear(x, q8.pack(w)).double()
    x64, w64 = x.double(), w.double()
    s_a = (x64.amax(1).clamp(min=0) - x64.amin(1).clamp(max=0)) / 255
    s_w = w64.abs().amax(1) / 127
    bound = (x64.abs().sum(1, keepdim=True) * s_w / 2 + s_a[:, None] * w64.abs().sum(1) / 2
             + 96 * s_a[:, None] * s_w / 4)
    error = (got - x64 @ w64.t()).abs()
    assert (error <= bound * 1.001 + 1e-5).all()
    assert error.max() > 0.01 * bound.max()  # the bound is not vacuous for this data


@pytest.mark.parametrize(("mode", "proj"), CASES)
@pytest.mark.parametrize(("lengths", "reverse"), [(None, False), (None, True), ([6, 2, 0], True),
                                                  ([3, 6, 1], False)])
def test_recurrence_matches_the_numpy_scheme_exactly(mode, proj, lengths, reverse, isa):
    x, h0, c0 = inputs(mode, 6, 3, 11, 20, proj)
    w = weights(mode, 11, 20, proj, bias=mode != "RNN_RELU")
    lengths_t = None if lengths is None else torch.tensor(lengths)
    y, h_n, c_n = run_int8(mode, x, h0, c0, w, lengths_t, reverse)
    want = ref.recurrence(mode, x.numpy(), h0.numpy(), numpy(c0), *map(numpy, w),
                          lengths=lengths, reverse=reverse)
    assert np.array_equal(y.numpy(), want[0])
    assert np.array_equal(h_n.numpy(), want[1])
    if c_n is not None:
        assert np.array_equal(c_n.numpy(), want[2])


def gate_error_bound(x, h, w_ih, w_hh):
    """Largest error bound (see the linear test) over the gate pre-activations of one step."""
    def bound(a, w):
        a64, w64 = a.double(), w.double()
        s_a = (a64.amax(1).clamp(min=0) - a64.amin(1).clamp(max=0)) / 255
        s_w = w64.abs().amax(1) / 127
        return (a64.abs().sum(1, keepdim=True) * s_w / 2 + s_a[:, None] * w64.abs().sum(1) / 2
                + a.shape[1] * s_a[:, None] * s_w / 4)
    return float((bound(x, w_ih) + bound(h, w_hh)).max())


@pytest.mark.parametrize("mode", ["RNN_TANH", "RNN_RELU", "GRU", "LSTM"])
def test_one_step_is_within_the_bound_derived_from_the_quantisation_step(mode):
    """One step from float: each pre-activation is off by at most e (linear bound); sigmoid
    is 1/4-Lipschitz and tanh 1-Lipschitz, bounded by 1, which gives for the new state
    RNN: e; GRU: e/2 + (2e + e/4 max|W_hn h + b_hn|); LSTM: e/4 (o) + e/4 |c0| + e/4 + e."""
    x, h0, c0 = inputs(mode, 1, 4, 40, 64, seed=9)
    w = weights(mode, 40, 64, seed=9)
    with torch.no_grad():
        _, h_n, _ = run_int8(mode, x, h0, c0, w)
        _, want_h, _ = ops.recurrence(mode, x, h0, c0, *w, None, False)
    e = gate_error_bound(x[0], h0, w[0], w[1])
    if mode.startswith("RNN"):
        bound = e
    elif mode == "GRU":
        hn = (h0 @ w[1][128:].t() + w[3][128:]).abs().max().item()
        bound = e / 2 + 2 * e + e / 4 * hn
    else:
        bound = e / 4 + e / 4 * c0.abs().max().item() + e / 4 + e
    error = (h_n - want_h).abs().max().item()
    assert error <= bound + 1e-5
    assert error > 0  # quantisation is really happening


@pytest.mark.parametrize(("mode", "proj"), CASES)
def test_same_bits_for_any_thread_count(mode, proj):
    x, h0, c0 = inputs(mode, 5, 5, 19, 300, proj)
    w = weights(mode, 19, 300, proj, seed=3)
    lengths = torch.tensor([5, 2, 0, 4, 5])
    reference = run_int8(mode, x, h0, c0, w, lengths, threads=1)
    for threads in (2, 3):
        got = run_int8(mode, x, h0, c0, w, lengths, threads=threads)
        for a, b in zip(reference, got, strict=True):
            assert (a is None and b is None) or torch.equal(a, b), f"{threads} threads"


def test_kernel_names_follow_the_engine_isa():
    names = {isa: q8.native().kernel(isa) for isa in engine.supported_isas()}
    assert names["generic"] == "generic"
    if "avx2" in names:
        assert names["avx2"] == "avx2"
    assert q8.kernel() in ("vnni", "avx2", "generic")
    with pytest.raises(ValueError, match="isa: expected"):
        q8.native().kernel("sse9")


class TestBoundary:
    """The native entry point checks every tensor itself (called here without the wrapper)."""

    def arguments(self, **changes):
        mode, hidden = "LSTM", 20
        x, h0, c0 = inputs(mode, 4, 2, 9, hidden)
        w_ih, w_hh, b_ih, b_hh, _ = weights(mode, 9, hidden)
        ih, hh = q8.pack(w_ih, 4), q8.pack(w_hh, 4)
        args = dict(mode=2, reverse=False, threads=1, isa="generic", hidden=hidden, x=x, h0=h0,
                    c0=c0, w_ih=ih.weight, s_ih=ih.scale, r_ih=ih.rowsum, w_hh=hh.weight,
                    s_hh=hh.scale, r_hh=hh.rowsum, w_hr=None, s_hr=None, r_hr=None,
                    bias=b_ih + b_hh, b_hn=None, lengths=None, y=torch.empty(4, 2, hidden),
                    h_n=torch.empty(2, hidden), c_n=torch.empty(2, hidden))
        args.update(changes)
        return args

    def test_valid_arguments_run(self):
        q8.native().layer(**self.arguments())

    @pytest.mark.parametrize(("changes", "error", "match"), [
        ({"x": torch.zeros(4, 2, 9, dtype=torch.float64)}, TypeError,
         "x: expected dtype Float, got Double"),
        ({"h0": torch.zeros(3, 20)}, ValueError, "h0: expected shape"),
        ({"c0": None}, TypeError, "c0: expected a tensor, got None"),
        ({"c_n": torch.zeros(20, 2).t()}, ValueError, "c_n: expected a contiguous tensor"),
        ({"w_hh": torch.zeros(5, 5, 16, 4, dtype=torch.int8)}, ValueError, "w_hh: expected shape"),
        ({"s_ih": torch.zeros(128, dtype=torch.float64)}, TypeError, "s_ih: expected dtype"),
        ({"r_hh": torch.full((128,), 10 ** 6, dtype=torch.int32)}, ValueError,
         "r_hh: expected row"),
        ({"lengths": torch.tensor([4, 5])}, ValueError, "lengths: expected values in"),
        ({"lengths": torch.tensor([4, 1], dtype=torch.int32)}, TypeError, "lengths: expected"),
        ({"bias": "bias"}, TypeError, "bias: expected a tensor, got str"),
        ({"mode": 7}, ValueError, "mode: expected 0-3"),
        ({"isa": "mmx"}, ValueError, "isa: expected"),
        ({"threads": 0}, ValueError, "threads: expected 1-1024"),
        ({"b_hn": torch.zeros(20)}, ValueError, "b_hn is for GRU only"),
        ({"w_hr": torch.zeros(1, 5, 16, 4, dtype=torch.int8)}, ValueError, "with projection"),
        ({"x": torch.zeros(4, 2, 9, device="meta")}, ValueError, "x: expected a strided CPU"),
        ({"y": torch.zeros(8 * 20)[:4 * 2 * 20].view(4, 2, 20)[:, :, :]}, None, None),
    ])
    def test_bad_tensors_are_refused(self, changes, error, match):
        if error is None:  # a view inside a larger storage is fine
            q8.native().layer(**self.arguments(**changes))
            return
        with pytest.raises(error, match=match):
            q8.native().layer(**self.arguments(**changes))

    def test_storage_smaller_than_the_shape_is_refused(self):
        y = torch.empty(4, 2, 20)
        y.untyped_storage().resize_(100)
        with pytest.raises(ValueError, match="y: its storage"):
            q8.native().layer(**self.arguments(y=y))

    def test_input_requiring_grad_is_refused_under_grad_mode(self):
        args = self.arguments()
        args["x"].requires_grad_()
        with pytest.raises(RuntimeError, match="records no gradients"):
            q8.native().layer(**args)
        with torch.no_grad():
            q8.native().layer(**args)

    def test_non_finite_weights_are_refused_when_packing(self):
        w = torch.ones(4, 3)
        w[1, 2] = float("nan")
        with pytest.raises(ValueError, match="weight: expected finite values"):
            q8.pack(w)
