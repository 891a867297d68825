"""Import of the compiled extension, which is optional (no compiler at install time)."""

from __future__ import annotations

import importlib
from types import ModuleType

# torch first: its OpenMP runtime must be loaded before the extension looks for it (the engine
# runs its threads on torch's OpenMP team when it finds one, see csrc/engine.cpp).
import torch  # noqa: F401

native: ModuleType | None
#: Why the extension could not be imported (``None`` when it is available).
import_error: ImportError | None

try:
    native = importlib.import_module("rnnkit.engine._native")
    import_error = None
except ImportError as error:  # built without a compiler, or the build failed
    native = None
    import_error = error


class EngineUnavailableError(RuntimeError):
    """Raised when a kernel is called but the compiled extension is not importable."""


#: The CPU's vendor (``'intel'``, ``'amd'``, ``'other'``; ``None`` without the extension), read
#: once: the routes that depend on it (engine.gemm, engine.policy) run inside torch.compile's
#: trace, which cannot call into the extension.
cpu_vendor: str | None = native.cpu_vendor() if native is not None else None
#: The kernels' instruction set (``'avx512'``, ``'avx2'``, ``'generic'``; ``None`` without the
#: extension), for the same reason; :func:`rnnkit.engine.set_isa` keeps it current.
kernel_isa: str | None = native.isa() if native is not None else None


def require_native() -> ModuleType:
    """The compiled module, or :class:`EngineUnavailableError` explaining why it is missing."""
    if native is None:
        raise EngineUnavailableError(
            "rnnkit.engine: the compiled extension rnnkit.engine._native is not available "
            f"({import_error}); reinstall rnnkit with a C++17 compiler to build it")
    return native
