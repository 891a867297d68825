"""Refuse a model too large for this machine before building it.

A ``hidden_size`` of 10**9 would otherwise fail deep inside torch's allocator (or swap the
machine to a halt). The check is a lower bound: the recurrent weights alone (``gates x hidden x
(hidden + 2)`` per layer and direction, input and output layers left out), in float32, four
times over for training (weights, gradients, Adam's two moments), against the memory the
system reports available now. A model that passes may still not fit; one that fails cannot.
"""

from __future__ import annotations

import os

from rnnkit.tasks.config import ModelConfig
from rnnkit.tasks.errors import ConfigError

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
BYTES_PER_PARAMETER_IN_TRAINING = 4 * 4  # float32 x (weights, gradients, 2 Adam moments)


def recurrent_parameters(model: ModelConfig) -> int:
    """A lower bound on the parameter count: the recurrent weights and biases only."""
    hidden = model.hidden_size
    recurrent_input = model.proj_size or hidden
    directions = 2 if model.bidirectional else 1
    per_layer = GATES[model.cell] * hidden * (recurrent_input + 2)
    return per_layer * model.num_layers * directions


def available_memory() -> int | None:
    """Bytes the system can give now (``MemAvailable``), else physical memory, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if count < 1024:
            return f"{count:.3g} {unit}"
        count /= 1024
    return f"{count:.3g} EB"


def check_model_fits_memory(model: ModelConfig, available: int | None = None) -> None:
    """Raise :class:`ConfigError` when training ``model`` cannot fit in ``available`` bytes
    (default: what the system reports), naming the sizes and what to change."""
    available = available_memory() if available is None else available
    needed = recurrent_parameters(model) * BYTES_PER_PARAMETER_IN_TRAINING
    if available is None or needed <= available:
        return
    raise ConfigError(
        f"model.hidden_size={model.hidden_size} (cell {model.cell}, num_layers "
        f"{model.num_layers}): training needs at least {_size(needed)} for the recurrent "
        f"weights alone ({recurrent_parameters(model):.3g} parameters in float32, with "
        f"gradients and Adam's two moments), more than the {_size(available)} of memory "
        "available; choose a smaller model.hidden_size or num_layers")
