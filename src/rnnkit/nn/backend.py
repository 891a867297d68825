"""Which kernels run a recurrent layer.

- ``"torch"``: PyTorch's fused recurrent operators (what ``torch.nn.RNN/LSTM/GRU`` run).
- ``"native"``: rnnkit's compiled CPU engine (:mod:`rnnkit.engine`).
- ``"python"``: the readable per-step loop of :mod:`rnnkit.nn.recurrence`; also used
  automatically whenever a layer has ``recurrent_dropout``, ``zoneout`` or ``layer_norm``.
- ``"auto"`` (default): the native engine on CPU where it is measured faster, torch otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import torch
from torch.autograd import forward_ad as _forward_ad

from rnnkit.nn.checks import check_choice

BACKENDS = ("auto", "native", "torch", "python")
_default_backend = "auto"
_fallback_warned = False


def set_backend(name: str) -> None:
    """Set the backend used by layers constructed without ``backend=`` (or with ``None``)."""
    global _default_backend
    _default_backend = check_choice("backend", name, BACKENDS)


def get_backend() -> str:
    """The global default backend name."""
    return _default_backend


@contextmanager
def use_backend(name: str):
    """Temporarily change the global default backend: ``with use_backend("torch"): ...``."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


_engine_module: ModuleType | None = None
_engine_resolved = False


def native_engine() -> ModuleType | None:
    """The engine module when its compiled kernels are importable, else ``None``.

    Resolved once: whether the extension imports cannot change within a process.
    """
    global _engine_module, _engine_resolved
    if not _engine_resolved:
        try:
            from rnnkit import engine
        except ImportError:
            engine = None
        available = getattr(engine, "available", None)
        _engine_module = engine if available is not None and available() else None
        _engine_resolved = True
    return _engine_module


def warn_native_unavailable(reason: str) -> None:
    """Warn once per process that ``backend='native'`` fell back to torch."""
    global _fallback_warned
    if _fallback_warned:
        return
    _fallback_warned = True
    warnings.warn(
        f"rnnkit: backend='native' requested but {reason}; using torch kernels instead",
        RuntimeWarning,
        stacklevel=4,
    )


# Bound once: attribute lookups through ``torch._C`` would double the checks' cost.
_is_compiling = torch.compiler.is_compiling
_is_tracing = torch._C._is_tracing
_functorch_transforms_active = torch._C._are_functorch_transforms_active
_any_autocast_enabled = torch._C._is_any_autocast_enabled


def fast_path_declined() -> bool:
    """True when the native fast paths of ``forward()`` and ``step()`` must leave the call to
    the general path: while a tracer records (:func:`tracing`), inside a ``torch.func``
    transform or forward-mode AD (:func:`functorch_active`), or with autocast on for any
    device (the general path then checks for the CPU's, :func:`autocast_active`). One call of
    cheap checks: a streaming step is a few microseconds."""
    return (_is_compiling() or _is_tracing() or _functorch_transforms_active()
            or _forward_ad._current_level >= 0 or _any_autocast_enabled())


def tracing() -> bool:
    """True while ``torch.compile``/``torch.export`` or ``torch.jit.trace`` records the call:
    the native fast paths, which a tracer cannot see into, then step aside for the custom op
    (``torch.ops.rnnkit.recurrence``) that it records."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def autocast_active() -> bool:
    """True inside ``torch.autocast("cpu")``. torch.nn's layers then compute in the lower
    precision and return its dtype (LSTM and RNN) where the native kernels would compute in
    float32, so ``auto`` runs torch's kernels and the fast paths step aside."""
    return torch.is_autocast_enabled("cpu")


_ONEDNN_RUNS = {torch.bfloat16: torch.ops.mkldnn._is_mkldnn_bf16_supported,
                torch.float16: torch.ops.mkldnn._is_mkldnn_fp16_supported}


def autocast_lacks_onednn_lstm(mode: str) -> bool:
    """True for an LSTM inside ``torch.autocast("cpu")`` to a dtype this CPU's oneDNN has no
    LSTM for (bfloat16 and float16 need AVX-512; an AVX2-only EPYC has neither). torch still
    casts its oneDNN LSTM's inputs to that dtype there, and torch.nn's LSTM fails ("could not
    create a primitive descriptor"); rnnkit's runs torch's kernel under :func:`onednn_off`,
    which takes torch's generic LSTM, in float32, as autocast leaves torch.nn's GRU."""
    return (mode == "LSTM" and autocast_active()
            and not _ONEDNN_RUNS.get(torch.get_autocast_dtype("cpu"), lambda: True)())


@contextmanager
def onednn_off() -> Iterator[None]:
    """torch's oneDNN kernels switched off for the block (process-wide while it runs)."""
    was_enabled = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(was_enabled)


def functorch_active() -> bool:
    """True inside a ``torch.func`` transform (``grad``, ``vmap``, ``jvp``, ``jacrev`` ...) or
    under forward-mode AD (``torch.autograd.forward_ad``), which the native engine's autograd
    function does not implement: ``auto`` and ``native`` then run the python loop."""
    return (torch._C._are_functorch_transforms_active()
            or _forward_ad._current_level >= 0)
