"""The kernels' large scratch and saved tensors, on memory reused across calls.

A recurrent layer's call allocates buffers of the same sizes as the call before: the input
projection its forward kernel reads, ``(seq, batch, gates * hidden)``, and in training the
activated gates kept for backward and the gate gradients of BPTT, the same size again. glibc
serves allocations of 32 MB and more (and smaller ones once its heap was trimmed) with fresh
pages and unmaps them on free, so each call paid a page fault per 4 KB of them: about 37,000
faults and 70 ms of system time a training step for a 2x256 LSTM language model at batch 64,
128 steps, and 18,000-26,000 faults an inference call at batch 128 with 256-512 units
(bench/results/workspace.md). The int8 kernels take their projection buffer from the same
cache in C.

:func:`empty` and :func:`zeros` hand out tensors on blocks of the native engine's workspace
cache. When torch drops the last reference to one (saved tensors included), its block goes
back to the cache for the next call of a similar size instead of back to the system. The
cache keeps at most ``RNNKIT_WORKSPACE_CACHE_MB`` megabytes of released blocks (default
512; ``0`` turns it off), the least recently released going first; :func:`set_limit`
changes that and :func:`release` returns every cached block to the system. Buffers under
:data:`MIN_BYTES` come from torch's allocator as before (glibc's heap already reuses those).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.engine._loader import require_native

LIMIT_ENV = "RNNKIT_WORKSPACE_CACHE_MB"
DEFAULT_LIMIT_MB = 512
MIN_BYTES = 1 << 20
_MEGABYTE = 1 << 20


@dataclass(frozen=True)
class WorkspaceStats:
    """The cache's state: bytes and blocks held for reuse, its limit, and how many requests
    a cached block served (``hits``) or the system did (``misses``)."""

    cached_bytes: int
    limit_bytes: int
    cached_blocks: int
    hits: int
    misses: int


def _limit_from_environment() -> int:
    text = os.environ.get(LIMIT_ENV, "").strip()
    if not text:
        return DEFAULT_LIMIT_MB * _MEGABYTE
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:
        raise ValueError(f"{LIMIT_ENV}: expected a number of megabytes >= 0, got {text!r}")
    return int(megabytes * _MEGABYTE)


@functools.cache
def native():
    """The extension, with the cache's limit set from the environment on first use: every
    caller whose kernels take blocks from the cache (the int8 layers too) goes through here."""
    extension = require_native()
    extension.workspace_limit(_limit_from_environment())
    return extension


def set_limit(megabytes: float) -> None:
    """Keep at most ``megabytes`` of released blocks for reuse (``0``: none), releasing the
    least recently used beyond that now."""
    if isinstance(megabytes, bool) or not isinstance(megabytes, (int, float)):
        raise TypeError(f"megabytes: expected a number, got {type(megabytes).__name__}")
    if not megabytes >= 0:
        raise ValueError(f"megabytes: expected a number >= 0, got {megabytes}")
    native().workspace_limit(int(megabytes * _MEGABYTE))


def release() -> None:
    """Return every cached block to the system, keeping the limit."""
    extension = native()
    limit = extension.workspace_stats()[1]
    extension.workspace_limit(0)
    extension.workspace_limit(limit)


def stats() -> WorkspaceStats:
    """The cache's current :class:`WorkspaceStats`."""
    return WorkspaceStats(*native().workspace_stats())


def empty(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """An uninitialised contiguous tensor of ``shape`` with ``like``'s dtype and device, on a
    cached block when it is a CPU float32/float64 tensor of at least :data:`MIN_BYTES`."""
    return _new(shape, like, zero=False)


def zeros(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """As :func:`empty`, filled with zeros."""
    return _new(shape, like, zero=True)


def _new(shape: tuple[int, ...], like: Tensor, zero: bool) -> Tensor:
    cached = (like.device.type == "cpu" and like.dtype in (torch.float32, torch.float64)
              and math.prod(shape) * like.element_size() >= MIN_BYTES)
    if not cached:
        return like.new_zeros(shape) if zero else like.new_empty(shape)
    return native().workspace(tuple(shape), like.dtype == torch.float64, zero)
