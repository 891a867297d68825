"""The large matrix products around the recurrence: torch's BLAS, or the engine's packed tile.

A layer's input projection ``x W_ih^T`` and the gradients of its input and weights are single
GEMMs over all steps at once. torch runs them on its BLAS, MKL on x86, which chooses its
kernels by CPU vendor: on AMD it runs at the rate of its AVX2 code, about half of what an
AVX-512 core does. On a 2-core AVX-512 AMD EPYC (Zen 5), at the shapes of a layer's projection
and gradients, MKL ran 82-100 GFLOP/s per core and the engine's tile 134-226: 1.4-2.5x per
product on 1 and 2 threads, 1.36-1.74x per layer call (``python bench/gemm_ab.py [--layers]``,
bench/results/gemm_amd.md). On a Xeon, where MKL runs its AVX-512 kernels, MKL was ahead at
16 of 20 of those products (bench/results/gemm_intel.md). So where torch's BLAS is MKL, the CPU
is not Intel's and the kernels run AVX-512, these products go through :func:`matmul` on the
tile; elsewhere through torch. ``RNNKIT_GEMM=native`` or ``torch`` forces one (testing and
benchmarking).

The two give the same values to rounding, not the same bits: like torch's own results, a
layer's outputs and gradients then differ in the last bits between Intel and AMD CPUs. The
tile's own bits depend neither on the thread count nor on the blocking (every element sums
its products in order).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from rnnkit.engine import _loader, differentiable
from rnnkit.engine._loader import require_native

ROUTE_ENV = "RNNKIT_GEMM"
ROUTES = ("auto", "native", "torch")
# Multiply-adds below which a product runs on one thread (a second one costs a wake-up and a
# barrier, a few microseconds).
MIN_WORK_PER_THREAD = 1 << 18


def route() -> str:
    """``'native'`` or ``'torch'``: where :func:`matmul` runs now. ``auto`` takes the tile
    where torch's BLAS is MKL, the CPU is not Intel's and the kernels run AVX-512."""
    chosen = os.environ.get(ROUTE_ENV, "auto").strip().lower() or "auto"
    if chosen not in ROUTES:
        raise ValueError(f"{ROUTE_ENV}: expected one of {', '.join(ROUTES)}, got {chosen!r}")
    if chosen != "auto":
        return chosen
    tile = (torch.backends.mkl.is_available() and _loader.cpu_vendor != "intel"
            and require_native().isa() == "avx512")
    return "native" if tile else "torch"


def _threads(a: Tensor, b: Tensor) -> int:
    work = a.shape[0] * a.shape[1] * b.shape[1]
    return max(1, min(torch.get_num_threads(), work // MIN_WORK_PER_THREAD))


def matmul(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """``a @ b`` for 2-D float tensors, ``a (M, K)``, ``b (K, N)`` -> ``(M, N)``, contiguous.

    On the tile when :func:`route` says ``'native'`` and both are plain CPU float32/float64
    tensors of one dtype that autograd does not track; otherwise torch's ``a @ b``.
    Transposed views are read in place. ``out``: a contiguous ``(M, N)`` tensor of their dtype,
    apart from both, to write the product into and return (``torch.mm``'s ``out=``).
    """
    if route() == "native" and _tile_can_run(a, b):
        if out is None:
            return require_native().gemm(a=a, b=b, threads=_threads(a, b))
        return require_native().gemm(a=a, b=b, threads=_threads(a, b), out=out)
    return a @ b if out is None else torch.mm(a, b, out=out)


_PLAIN = (Tensor, torch.nn.Parameter)


def plain(a: Tensor, b: Tensor) -> bool:
    """Whether a product of ``a`` and ``b`` is plain arithmetic on real tensors: neither is a
    subclass, a tracer's or functorch's wrapper, nor tracked by autograd."""
    tracked = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
    return (type(a) in _PLAIN and type(b) in _PLAIN and not tracked
            and not differentiable.any_wrapped((a, b)))


def _tile_can_run(a: Tensor, b: Tensor) -> bool:
    return (plain(a, b) and a.dtype == b.dtype and a.dtype in (torch.float32, torch.float64)
            and a.device.type == "cpu" and b.device.type == "cpu")
