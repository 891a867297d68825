"""Bit-reproducible matrix products: MKL's strict conditional numerical reproducibility (CNR).

torch's CPU wheel does its float products with Intel MKL. Outside CNR mode MKL may pick a
different summation order for the same product depending on where its operands sit in memory
(their alignment) and on the CPU (seen on AMD EPYC): a run resumed in a new process then
differs from the uninterrupted run in the last bits after its first step, and the two drift
apart. In strict CNR mode (``MKL_CBWR=AUTO,STRICT``) MKL keeps its fastest code path for the
CPU but fixes the order, independent of alignment and thread count.

MKL reads ``MKL_CBWR`` once, at its first call, and cannot change mode after that. So
``import rnnkit`` sets it (unless the user already set it, or set ``RNNKIT_MKL_CNR=off``),
which is early enough unless torch has already run a matrix product in this process;
:func:`check_blas_reproducibility` says when that happened. The cost is measured by
``python bench/cnr_cost.py`` (bench/results/cnr_cost.md).
"""

from __future__ import annotations

import ctypes
import os
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: What rnnkit asks of MKL: keep the CPU's own code path (AUTO), make it order-stable (STRICT).
STRICT_CNR = "AUTO,STRICT"
#: Set to ``off`` to leave MKL's mode alone (rnnkit then cannot promise bit-exact resume).
OPT_OUT_VARIABLE = "RNNKIT_MKL_CNR"

_CBWR_ALL = -1
_CBWR_BRANCH_OFF = 1
_CBWR_STRICT = 0x10000
_BRANCHES = {0: "off", 1: "off", 2: "auto", 3: "compatible", 4: "sse2", 6: "ssse3",
             7: "sse4_1", 8: "sse4_2", 9: "avx", 10: "avx2", 11: "avx512_mic", 12: "avx512",
             13: "avx512_mic_e1", 14: "avx512_e1"}


def request_strict_cnr() -> None:
    """Ask MKL for strict CNR before its first call (a no-op if the user chose a mode)."""
    if os.environ.get(OPT_OUT_VARIABLE, "").strip().lower() in ("off", "0", "false", "no"):
        return
    os.environ.setdefault("MKL_CBWR", STRICT_CNR)


@dataclass(frozen=True)
class BlasMode:
    """MKL's reproducibility mode as MKL itself reports it.

    ``available`` is False when torch does not use MKL (e.g. ARM builds) or the query is not
    exported; then ``branch`` is ``'unknown'`` and ``strict`` False.
    """

    available: bool
    branch: str
    strict: bool

    @property
    def reproducible(self) -> bool:
        """True when products do not depend on alignment or thread count (or MKL is absent)."""
        return self.strict or not self.available


@cache
def _mkl_cbwr_get():
    import torch  # only when asked: ``import rnnkit`` must not load torch

    if not torch.backends.mkl.is_available():
        return None
    library = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        handle = ctypes.CDLL(str(library))
        function = handle.mkl_serv_cbwr_get  # MKL's mkl_cbwr_get, as the wheel exports it
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def blas_mode() -> BlasMode:
    """MKL's current mode (this initialises MKL's mode if nothing has yet)."""
    query = _mkl_cbwr_get()
    if query is None:
        return BlasMode(available=False, branch="unknown", strict=False)
    value = query(_CBWR_ALL) & 0xFFFFFFFF
    branch = _BRANCHES.get(value & 0xFFFF, f"code {value & 0xFFFF}")
    if value & 0xFFFF == _CBWR_BRANCH_OFF:
        branch = "off"
    return BlasMode(available=True, branch=branch, strict=bool(value & _CBWR_STRICT))


def check_blas_reproducibility() -> BlasMode:
    """Warn once when MKL runs without strict CNR, saying why and how to fix it."""
    mode = blas_mode()
    if mode.reproducible:
        return mode
    requested = os.environ.get("MKL_CBWR")
    if requested is not None and "STRICT" in requested.upper():
        cause = ("torch ran a matrix product before rnnkit was imported, and MKL fixes its mode "
                 "at its first call; import rnnkit before running torch code")
    else:
        cause = (f"MKL_CBWR is {requested or '<unset>'}; set MKL_CBWR={STRICT_CNR} (or unset it "
                 f"and {OPT_OUT_VARIABLE}) before the process starts")
    warnings.warn(
        f"MKL runs without strict conditional numerical reproducibility (branch {mode.branch}): "
        "matrix products may depend on memory alignment, so a resumed run can differ from an "
        f"uninterrupted one in the last digits on some CPUs. Cause: {cause}.",
        RuntimeWarning,
        stacklevel=2,
    )
    return mode
