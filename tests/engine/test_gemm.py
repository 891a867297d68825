"""The engine's standalone GEMM (``_native.gemm``, ``rnnkit.engine.gemm``): values against
float64 products, the same bits at every thread count and alignment, every operand layout,
the boundary's checks, and the route the recurrence's products take."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch._subclasses.fake_tensor import FakeTensorMode

from rnnkit import engine
from rnnkit.engine import gemm, ops

from .test_boundary import native, truncated
from .test_determinism import misaligned

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

# (M, K, N): a tile's rows and a vector's lanes not dividing the sizes; K past one chunk of
# the kernel (384) and past several; one row; one column.
SHAPES = [(1, 5, 3), (13, 7, 17), (37, 400, 33), (100, 64, 256), (25, 1000, 40), (3, 385, 1),
          (130, 16, 16)]


def operands(m, k, n, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=generator, dtype=dtype)
    b = torch.randn(k, n, generator=generator, dtype=dtype)
    return a, b


def exact(a, b):
    return a.double() @ b.double()


def close(got, a, b):
    """Within float rounding of the float64 product: each element's error is bounded by its
    sum of absolute products times a few units of rounding per term."""
    scale = a.double().abs() @ b.double().abs()
    eps = torch.finfo(a.dtype).eps
    bound = scale * eps * (a.shape[1] + 2) + 1e-300
    assert got.dtype == a.dtype and got.shape == (a.shape[0], b.shape[1])
    assert got.is_contiguous()
    assert bool(((got.double() - exact(a, b)).abs() <= bound).all())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_on_every_isa(isa, shape, dtype):
    a, b = operands(*shape, dtype=dtype)
    got = native().gemm(a=a, b=b, threads=1)
    close(got, a, b)


@pytest.mark.parametrize("layout_a", ["rows", "transposed", "strided"])
@pytest.mark.parametrize("layout_b", ["rows", "transposed", "strided"])
def test_every_operand_layout(layout_a, layout_b):
    a, b = operands(29, 401, 35)

    def laid_out(t, layout):
        if layout == "transposed":  # k-major storage, read in place
            return t.t().contiguous().t()
        if layout == "strided":  # neither dimension contiguous: copied by the boundary
            return torch.zeros(t.shape[0], t.shape[1], 2, dtype=t.dtype).copy_(
                t.unsqueeze(-1).expand(-1, -1, 2))[..., 0]
        return torch.zeros(t.shape[0], t.shape[1] + 3)[:, 3:].copy_(t)  # padded rows

    a2, b2 = laid_out(a, layout_a), laid_out(b, layout_b)
    assert torch.equal(a2, a) and torch.equal(b2, b)
    got = native().gemm(a=a2, b=b2, threads=2)
    assert torch.equal(got, native().gemm(a=a, b=b, threads=2))
    close(got, a, b)


@pytest.mark.parametrize("shape", [(37, 400, 33), (250, 900, 70), (2, 9, 5)])
def test_same_bits_at_every_thread_count_and_alignment(shape):
    a, b = operands(*shape, seed=3)
    first = native().gemm(a=a, b=b, threads=1)
    for threads in (2, 3, 5):
        assert torch.equal(native().gemm(a=a, b=b, threads=threads), first)
    for offset in (1, 3):
        assert torch.equal(native().gemm(a=misaligned(a, offset), b=misaligned(b, offset),
                                         threads=2), first)


def test_empty_sizes():
    for m, k, n in [(0, 4, 3), (4, 0, 3), (4, 3, 0)]:
        a, b = operands(m, k, n)
        got = native().gemm(a=a, b=b, threads=2)
        assert got.shape == (m, n) and bool((got == 0).all())


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 420), n=st.integers(1, 40),
       transposed_a=st.booleans(), transposed_b=st.booleans(), threads=st.integers(1, 3))
def test_any_shape_and_layout(m, k, n, transposed_a, transposed_b, threads):
    a, b = operands(m, k, n, seed=m * 7 + n)
    if transposed_a:
        a = a.t().contiguous().t()
    if transposed_b:
        b = b.t().contiguous().t()
    close(native().gemm(a=a, b=b, threads=threads), a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_out_gets_the_same_bits_as_a_new_result(dtype):
    a, b = operands(37, 400, 33, dtype=dtype)
    expected = native().gemm(a=a.t().contiguous().t(), b=b, threads=2)
    out = torch.full((37, 33), float("nan"), dtype=dtype)
    got = native().gemm(a=a.t().contiguous().t(), b=b, threads=2, out=out)
    assert got is out and torch.equal(out, expected)
    empty_k = torch.full((37, 33), float("nan"), dtype=dtype)
    native().gemm(a=a[:, :0], b=b[:0], threads=1, out=empty_k)
    assert bool((empty_k == 0).all())


BAD_OUTS = {
    "shape": (lambda a, b: torch.empty(4, 6), ValueError, r"out: expected shape \(4, 5\)"),
    "dtype": (lambda a, b: torch.empty(4, 5, dtype=torch.float64), TypeError,
              r"out: expected dtype Float \(the dtype of a\), got Double"),
    "transposed": (lambda a, b: torch.empty(5, 4).t(), ValueError, "out: expected a contiguous"),
    "aliases a": (lambda a, b: a.view(-1)[4:24].view(4, 5), ValueError,
                  "out: expected memory apart"),
    "aliases b": (lambda a, b: b.view(-1)[:20].view(4, 5), ValueError,
                  "out: expected memory apart"),
    "meta": (lambda a, b: torch.empty(4, 5, device="meta"), ValueError,
             "out: expected a strided CPU"),
    "not a tensor": (lambda a, b: [0.0] * 20, TypeError, "out: expected a tensor"),
}


@pytest.mark.parametrize("bad", sorted(BAD_OUTS))
def test_refuses_each_bad_out(bad):
    make, error, words = BAD_OUTS[bad]
    a, b = operands(4, 6, 5)
    with pytest.raises(error, match=words):
        native().gemm(a=a, b=b, threads=1, out=make(a, b))


@pytest.mark.parametrize("name", ["native", "torch"])
def test_matmul_writes_out_on_either_route(route, name):
    route(name)
    a, b = operands(30, 20, 10)
    out = torch.empty(30, 10)
    assert gemm.matmul(a, b.t().contiguous().t(), out=out) is out
    torch.testing.assert_close(out, a @ b)


BAD_OPERANDS = {
    "meta": (lambda t: torch.empty_like(t, device="meta"), ValueError, "CPU"),
    "three dims": (lambda t: t.unsqueeze(0), ValueError, "2-D"),
    "int": (lambda t: t.long(), TypeError, "float32 or float64"),
    "storage too small": (truncated, ValueError, "storage"),
    "not a tensor": (lambda t: t.tolist(), TypeError, "expected a tensor"),
}


@pytest.mark.parametrize("name", ["a", "b"])
@pytest.mark.parametrize("bad", sorted(BAD_OPERANDS))
def test_refuses_each_bad_operand_by_name(name, bad):
    make, error, words = BAD_OPERANDS[bad]
    kwargs = dict(zip(("a", "b"), operands(4, 6, 5), strict=True), threads=1)
    kwargs[name] = make(kwargs[name])
    with pytest.raises(error, match=rf"{name}: .*{words}"):
        native().gemm(**kwargs)


def test_refuses_mismatched_operands_and_threads():
    a, b = operands(4, 6, 5)
    with pytest.raises(ValueError, match=r"a, b: expected b to have a's 6 columns as rows"):
        native().gemm(a=a, b=b[:5], threads=1)
    with pytest.raises(TypeError, match=r"a, b: expected one dtype"):
        native().gemm(a=a, b=b.double(), threads=1)
    for threads in (0, 2000):
        with pytest.raises(ValueError, match=r"threads: expected 1-1024"):
            native().gemm(a=a, b=b, threads=threads)
    with pytest.raises(TypeError, match="keyword"):
        native().gemm(a, b, 1)


def test_refuses_fake_tensors():
    with FakeTensorMode() as mode:
        a = mode.from_tensor(torch.randn(4, 6))
        b = mode.from_tensor(torch.randn(6, 5))
        with pytest.raises(TypeError, match="a: expected a plain CPU tensor"):
            native().gemm(a=a, b=b, threads=1)


@pytest.fixture
def route(monkeypatch):
    def choose(name):
        monkeypatch.setenv(gemm.ROUTE_ENV, name)

    return choose


def test_route_from_the_environment(route):
    route("native")
    assert gemm.route() == "native"
    route("TORCH")
    assert gemm.route() == "torch"
    route("auto")
    vendor_rule = (torch.backends.mkl.is_available() and engine.isa() == "avx512"
                   and native().cpu_vendor() != "intel")
    assert gemm.route() == ("native" if vendor_rule else "torch")
    route("fast")
    with pytest.raises(ValueError, match=r"RNNKIT_GEMM: expected one of auto, native, torch, "
                                         r"got 'fast'"):
        gemm.route()


def test_matmul_takes_the_route_and_keeps_autograd(route, monkeypatch):
    calls = []
    real = native().gemm
    monkeypatch.setattr(gemm, "require_native", lambda: type(
        "Spy", (), {"gemm": staticmethod(lambda **kw: calls.append(1) or real(**kw)),
                    "isa": staticmethod(native().isa),
                    "cpu_vendor": staticmethod(native().cpu_vendor)})())
    a, b = operands(8, 9, 10)
    route("native")
    torch.testing.assert_close(gemm.matmul(a, b), a @ b)
    assert calls == [1]
    tracked = a.clone().requires_grad_()
    out = gemm.matmul(tracked, b)  # autograd must see this product: torch's
    assert out.requires_grad and calls == [1]
    assert gemm.matmul(a.half(), b.half()).dtype == torch.float16 and calls == [1]
    route("torch")
    gemm.matmul(a, b)
    assert calls == [1]


@pytest.mark.parametrize("mode,proj", [("LSTM", 0), ("LSTM", 4), ("GRU", 0), ("RNN_TANH", 0)])
@pytest.mark.parametrize("lengths", [None, [9, 4, 7]])
@pytest.mark.parametrize("reverse", [False, True])
def test_recurrence_gradients_agree_on_both_routes(route, mode, proj, lengths, reverse):
    """The layer's outputs and every gradient, through the tile and through torch."""
    gates = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    hidden, inputs = 6, 5
    out = proj or hidden
    lengths = None if lengths is None else torch.tensor(lengths)
    results = {}
    for name in ("native", "torch"):
        route(name)
        generator = torch.Generator().manual_seed(4)

        def leaf(*shape, generator=generator):
            return torch.randn(*shape, generator=generator, dtype=torch.float64,
                               requires_grad=True)

        x = leaf(9, 3, inputs)
        w_ih, w_hh = leaf(gates * hidden, inputs), leaf(gates * hidden, out)
        w_hr = leaf(proj, hidden) if proj else None
        h0 = torch.zeros(3, out, dtype=torch.float64)
        c0 = torch.zeros(3, hidden, dtype=torch.float64) if mode == "LSTM" else None
        y, *_ = ops.recurrence(mode, x, h0, c0, w_ih, w_hh, None, None, w_hr, lengths, reverse)
        y.pow(2).sum().backward()
        results[name] = [y.detach(), x.grad, w_ih.grad, w_hh.grad] + (
            [w_hr.grad] if proj else [])
    for got, expected in zip(results["native"], results["torch"], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
