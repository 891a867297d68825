"""Native CPU recurrence kernels for rnnkit's layers.

The compiled extension (``rnnkit.engine._native``) is optional: when it is missing,
:func:`available` is False, :data:`import_error` says why, and calling a kernel raises
:class:`EngineUnavailableError`. ``rnnkit.nn`` then falls back to torch's kernels.

Example::

    from rnnkit import engine
    if engine.available():
        y, h_n, c_n = engine.recurrence("GRU", x, h0, None, w_ih, w_hh, b_ih, b_hh, None,
                                        lengths=None, reverse=False)
"""

from __future__ import annotations

from rnnkit.engine import _loader, traced  # noqa: F401  (traced registers torch.ops.rnnkit.*)
from rnnkit.engine._loader import EngineUnavailableError
from rnnkit.engine.ops import cell_step, recurrence
from rnnkit.engine.policy import should_use, streaming_wins
from rnnkit.engine.stream import StaleWeightsError, StreamStep

import_error = _loader.import_error

__all__ = [
    "EngineUnavailableError",
    "StaleWeightsError",
    "StreamStep",
    "available",
    "cell_step",
    "import_error",
    "isa",
    "l2_cache_bytes",
    "recurrence",
    "set_isa",
    "set_l2_cache_bytes",
    "set_thread_backend",
    "should_use",
    "streaming_wins",
    "supported_isas",
    "thread_backend",
]


def available() -> bool:
    """True when the compiled kernels are importable."""
    return _loader.native is not None


def isa() -> str:
    """The instruction set the kernels use (``'avx512'``, ``'avx2'`` or ``'generic'``)."""
    return _loader.require_native().isa()


def supported_isas() -> list[str]:
    """Instruction sets usable on this CPU, from most portable to fastest."""
    return _loader.require_native().supported_isas()


def thread_backend() -> str:
    """Where multi-threaded kernels run: ``'openmp'`` (torch's OpenMP team) or ``'pool'``.

    ``'openmp'`` whenever torch's OpenMP runtime is loaded, so the engine's threads never
    compete with torch's for cores; ``RNNKIT_ENGINE_THREADS=pool`` forces rnnkit's own pool.
    """
    return _loader.require_native().thread_backend()


def set_thread_backend(name: str) -> None:
    """Choose ``'openmp'`` or ``'pool'`` (testing and benchmarking)."""
    _loader.require_native().set_thread_backend(name)


def l2_cache_bytes() -> int:
    """Bytes of one core's L2 cache the kernels plan for (the operating system's figure, or
    1 MiB when it gives none). Once a thread's weight panels take 3/4 of it, each step
    (forward, backward and streaming) reads them in the direction opposite to the step
    before, so that the part still cached is reused."""
    return _loader.require_native().l2_bytes()


def set_l2_cache_bytes(size: int) -> None:
    """Plan for an L2 cache of ``size`` bytes (testing and benchmarking); 0 restores the
    detected size. Results do not depend on it, only speed."""
    _loader.require_native().set_l2_bytes(size)


def set_isa(name: str) -> None:
    """Force an instruction set (testing and benchmarking); ``RNNKIT_ENGINE_ISA`` does too."""
    _loader.require_native().set_isa(name)
    _loader.kernel_isa = _loader.native.isa()
