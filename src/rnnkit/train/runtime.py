"""Where training runs: the device, and which process writes files.

Kept in one module so multi-process (DDP) and GPU options change one place.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def resolve_device(spec: str | torch.device) -> torch.device:
    """Turn ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` into a
    :class:`torch.device`, checking that it exists. Under torchrun, ``"cuda"``/``"auto"`` mean
    the GPU of this process's ``LOCAL_RANK``."""
    if isinstance(spec, torch.device):
        device = spec
    elif not isinstance(spec, str):
        raise TypeError(f"device: expected a string such as 'auto', 'cpu' or 'cuda', got {spec!r}")
    elif spec == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(spec)
        except RuntimeError as error:
            raise ValueError(
                f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}"
            ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {spec!r} was requested but CUDA is not available here")
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # one GPU per local rank
    return device


def is_main_process() -> bool:
    """True unless this is a non-zero rank of an initialised process group.

    Only the main process writes checkpoints, logs and the progress bar.
    """
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The user's module inside a ``DistributedDataParallel`` wrapper (or the model itself), so
    checkpoints hold the same parameter names however the model was trained."""
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model
