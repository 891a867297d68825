"""The forward kernel projecting the input itself (``x`` and ``w_ih`` in place of ``xg``):
close to torch's projection route and to torch.nn, the same bits at every thread count
whether threads split rows or units, the batch-1 and partial-panel products, which calls
take the route, and the boundary's checks of the new arguments."""

from __future__ import annotations

import pytest
import torch

from rnnkit import engine
from rnnkit.engine import checks, gemm, ops

from .reference import compare, direction_weights, make_module
from .test_determinism import misaligned, output_weights

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

SEQ_LEN, INPUT = 6, 19
MODES = [("RNN_TANH", 0), ("RNN_RELU", 0), ("LSTM", 0), ("LSTM", 24)]


@pytest.fixture
def in_kernel(monkeypatch):
    """Every eligible call (any batch, any weight size) projects in the kernel; returns a
    switch that turns the route off, and the list of calls that took it."""
    taken = []
    monkeypatch.setattr(ops, "FUSED_PROJECTION_MIN_BATCH", 1)
    monkeypatch.setattr(ops, "FUSED_PROJECTION_L2_BYTES", 1 << 40)
    route = ops._projects_in_kernel

    def spy(*args):
        result = route(*args)
        taken.append(result)
        return result

    monkeypatch.setattr(ops, "_projects_in_kernel", spy)

    def off():
        monkeypatch.setattr(ops, "FUSED_PROJECTION_MIN_BATCH", 1 << 30)
    return off, taken


def run(mode, proj, batch, hidden, reverse, train, threads, monkeypatch, offset=0):
    monkeypatch.setattr(ops, "choose_threads", lambda *args: threads)
    module = make_module(mode, INPUT, hidden, proj=proj, dtype=torch.float32, seed=3)
    weights = [misaligned(w.detach(), offset).requires_grad_(train) if w is not None else None
               for w in direction_weights(module, reverse)]
    generator = torch.Generator().manual_seed(4)
    x = misaligned(torch.randn(SEQ_LEN, batch, INPUT, generator=generator), offset)
    h0 = torch.randn(batch, proj or hidden, generator=generator)
    c0 = torch.randn(batch, hidden, generator=generator) if mode == "LSTM" else None
    if not train:
        with torch.no_grad():
            return [r for r in ops.recurrence(mode, x, h0, c0, *weights, None, reverse)
                    if r is not None], module, (x, h0, c0)
    x.requires_grad_()
    y, h_n, c_n = ops.recurrence(mode, x, h0, c0, *weights, None, reverse)
    loss = (y * output_weights(y)).sum() + h_n.sum() + (c_n.sum() if c_n is not None else 0)
    grads = torch.autograd.grad(loss, [w for w in weights if w is not None] + [x])
    outputs = [y, h_n] + ([c_n] if c_n is not None else []) + list(grads)
    return outputs, module, (x, h0, c0)


# 300 units, 20 rows: units split between threads (too few rows per thread), 300 % 16 units
# in a partial panel; 64 units, 48 rows: rows split at 2 and 3 threads; batch 1: the
# one-row product.
SHAPES = [(300, 20), (64, 48), (64, 1)]


@pytest.mark.parametrize(("mode", "proj"), MODES)
@pytest.mark.parametrize(("hidden", "batch"), SHAPES)
@pytest.mark.parametrize("train", [False, True])
def test_in_kernel_projection_same_bits_at_every_thread_count(mode, proj, hidden, batch, train,
                                                              isa, in_kernel, monkeypatch):
    reverse = batch != 48
    reference, _, _ = run(mode, proj, batch, hidden, reverse, train, 1, monkeypatch)
    assert in_kernel[1] and all(in_kernel[1])
    for offset, threads in ((0, 2), (0, 3), (3, 2)):
        got, _, _ = run(mode, proj, batch, hidden, reverse, train, threads, monkeypatch, offset)
        for index, (a, b) in enumerate(zip(reference, got, strict=True)):
            assert torch.equal(a, b), f"result {index}: {threads} threads, offset {offset}"


@pytest.mark.parametrize(("mode", "proj"), MODES)
@pytest.mark.parametrize(("hidden", "batch"), SHAPES)
@pytest.mark.parametrize("train", [False, True])
def test_in_kernel_projection_matches_torch_projection(mode, proj, hidden, batch, train, isa,
                                                      in_kernel, monkeypatch):
    fused, _, _ = run(mode, proj, batch, hidden, False, train, 2, monkeypatch)
    off, taken = in_kernel
    off()
    plain, _, _ = run(mode, proj, batch, hidden, False, train, 2, monkeypatch)
    assert taken[0] and not taken[-1]
    outputs = 3 if mode == "LSTM" else 2
    for index, (a, b) in enumerate(zip(fused, plain, strict=True)):
        # Gradients sum hundreds of float32 terms: rounding differences scale with them.
        scale = 1.0 if index < outputs else max(1.0, b.abs().max().item())
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize(("mode", "proj"), MODES)
@pytest.mark.parametrize(("hidden", "batch"), [(40, 20), (16, 1)])
def test_in_kernel_projection_matches_torch_nn_in_float64(mode, proj, hidden, batch, isa,
                                                          in_kernel):
    compare(mode, seq_len=SEQ_LEN, batch=batch, input_size=INPUT, hidden=hidden,
            proj=min(proj, hidden - 1), reverse=True)
    assert in_kernel[1] and all(in_kernel[1])


def plan_for(mode, lengths=None):
    return ops._Plan(mode, 8, 8, lengths, False, 1)


# (products route, mode, hidden, batch, lengths, expected). On torch's BLAS the rule is the one
# measured against MKL on the Xeon; on the tile (AMD) an LSTM projects in the kernel from 16
# rows at any weight size.
WHICH_CALLS = [
    ("torch", "LSTM", 64, 32, None, True),
    ("torch", "LSTM", 128, 16, None, True),
    ("torch", "RNN_TANH", 256, 32, None, True),
    ("torch", "LSTM", 64, 8, None, False),       # too few rows per step
    ("torch", "LSTM", 256, 32, None, False),     # 2 MiB of weights, too few rows for them
    ("torch", "LSTM", 256, 128, None, True),     # 2 MiB, enough rows
    ("torch", "LSTM", 512, 128, None, False),    # 8 MiB
    ("torch", "GRU", 64, 32, None, False),       # the n gate's input part stays apart
    ("torch", "LSTM", 64, 32, torch.full((32,), 3), False),
    ("native", "LSTM", 256, 32, None, True),     # any weight size from 16 rows
    ("native", "LSTM", 512, 16, None, True),
    ("native", "LSTM", 512, 128, None, True),
    ("native", "LSTM", 512, 8, None, False),     # too few rows per step
    ("native", "RNN_TANH", 512, 32, None, False),  # RNN keeps the measured rule
    ("native", "GRU", 64, 32, None, False),
    ("native", "LSTM", 256, 32, torch.full((32,), 3), False),
]


@pytest.mark.parametrize(("route", "mode", "hidden", "batch", "lengths", "expected"),
                         WHICH_CALLS)
def test_which_calls_project_in_kernel(route, mode, hidden, batch, lengths, expected,
                                       monkeypatch):
    monkeypatch.setenv(gemm.ROUTE_ENV, route)
    gates = checks.GATES[mode]
    x = torch.zeros(3, batch, hidden)
    w_hh = torch.zeros(gates * hidden, hidden)
    assert ops._projects_in_kernel(plan_for(mode, lengths), x, w_hh, None) is expected
    assert not ops._projects_in_kernel(plan_for(mode), x, w_hh, [0] * batch)  # gathered rows


def fused_kwargs() -> dict:
    """Valid arguments of ``_native.forward`` for an LSTM projecting its input itself."""
    seq, batch, hidden, width, inputs = 3, 2, 4, 16, 5
    new = torch.zeros
    return dict(
        mode=checks.MODE_IDS["LSTM"], reverse=False, save=False, threads=1, pack=True, xg=None,
        bias=torch.randn(width), h0=new(batch, hidden), c0=new(batch, hidden),
        w_hh=torch.randn(width, hidden), b_hn=None, w_hr=None, lengths=None,
        y=new(seq, batch, hidden), h_n=new(batch, hidden), c_n=new(batch, hidden),
        gates=new(1, batch, width), aux=new(1, batch, hidden), m=None,
        work=new(3 * batch * hidden), x=torch.randn(seq, batch, inputs),
        w_ih=torch.randn(width, inputs))


def native():
    from rnnkit.engine._loader import require_native

    return require_native()


def test_boundary_runs_valid_fused_arguments():
    kwargs = fused_kwargs()
    native().forward(**kwargs)
    assert kwargs["y"].abs().sum() > 0


@pytest.mark.parametrize(("change", "message"), [
    (dict(w_ih=None), "both x and w_ih"),
    (dict(x=None), "both x and w_ih"),
    (dict(xg=torch.zeros(3, 2, 16)), "xg = None"),
    (dict(lengths=torch.tensor([3, 1])), "no lengths or offsets"),
    (dict(pack=False), "pack = 1"),
    (dict(mode=checks.MODE_IDS["GRU"]), "GRU"),
    (dict(mode=9), "mode"),
    (dict(x=torch.randn(3, 2, 0)), "inconsistent sizes"),
    (dict(x=torch.randn(3, 2)), "expected x"),
    (dict(x=torch.randn(3, 2, 5).double()), "dtype"),
    (dict(x=torch.randn(3, 2, 10)[..., ::2]), "x: expected a contiguous"),
    (dict(w_ih=torch.randn(16, 6)), "w_ih: expected shape"),
    (dict(w_ih=torch.randn(12, 5)), "w_ih: expected shape"),
    (dict(w_ih=torch.randn(16, 5).double()), "w_ih: expected dtype"),
    (dict(w_ih=torch.randn(16, 10)[:, ::2]), "w_ih: expected a contiguous"),
    (dict(w_ih=torch.randn(16, 5).tolist()), "w_ih: expected a tensor"),
    (dict(h0=torch.zeros(3, 4)), "h0: expected shape"),
])
def test_boundary_refuses_bad_fused_arguments(change, message):
    kwargs = fused_kwargs() | change
    with pytest.raises((TypeError, ValueError), match=message):
        native().forward(**kwargs)


def test_boundary_refuses_truncated_fused_storage():
    kwargs = fused_kwargs()
    for name in ("x", "w_ih"):
        bad = dict(kwargs)
        clone = bad[name].clone()
        clone.untyped_storage().resize_(clone.element_size())
        bad[name] = clone
        with pytest.raises(ValueError, match=rf"{name}: the tensor's storage"):
            native().forward(**bad)
