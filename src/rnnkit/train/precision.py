"""Mixed precision on CUDA: autocast to bf16 or fp16, with loss scaling for fp16.

bf16 keeps float32's exponent range, so it needs no loss scaling; fp16 does: the loss is scaled
up before ``backward`` so small gradients do not flush to zero, gradients are unscaled before
clipping, and a step whose gradients overflowed is skipped while the scale shrinks
(:class:`torch.amp.GradScaler`). Weights and optimizer state stay float32. The native CPU engine
has no half-precision kernels, so mixed precision is refused off CUDA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal, get_args

import torch

AmpMode = Literal["none", "bf16", "fp16"]
AMP_MODES: tuple[str, ...] = get_args(AmpMode)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(mode: str, device: torch.device) -> None:
    """Raise ``ValueError`` unless ``mode`` is an AMP mode that ``device`` supports."""
    if mode not in AMP_MODES:
        raise ValueError(f"config.amp: expected one of {', '.join(AMP_MODES)}, got {mode!r}")
    if mode != "none" and device.type != "cuda":
        raise ValueError(
            f"config.amp: {mode!r} mixed precision needs a CUDA device, got {device}; "
            "use amp='none' on CPU"
        )


class Precision:
    """The training step's precision policy for ``mode`` (``none``, ``bf16``, ``fp16``)."""

    def __init__(self, mode: str, device: torch.device) -> None:
        check_amp(mode, device)
        self.mode, self.device = mode, device
        self.scaler = torch.amp.GradScaler("cuda") if mode == "fp16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward pass's context: autocast to the mode's dtype, or nothing."""
        if self.mode == "none":
            yield
            return
        with torch.autocast(self.device.type, dtype=_DTYPES[self.mode]):
            yield

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Back-propagate ``loss`` (scaled for fp16) and leave true-scale gradients behind."""
        if self.scaler is None:
            loss.backward()
            return
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)

    @property
    def skips_overflow(self) -> bool:
        """True when an overflowing gradient skips the step (fp16) instead of stopping the run."""
        return self.scaler is not None

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with fp16 skipped on overflow, then the scale is updated."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        """The loss scaler's state (``None`` without one), for checkpoints."""
        return None if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`; a run resumed with another ``amp`` mode starts afresh."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
