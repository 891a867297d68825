"""``backend='auto'``: where the native engine is measured faster than torch.nn."""

from __future__ import annotations

import torch

from rnnkit.engine import _loader

# nn.LSTM runs oneDNN's fused kernel on CPU; the native engine wins below this batch size.
LSTM_MAX_BATCH = 8


def should_use(mode: str, *, input_size: int, hidden_size: int, batch: int, seq_len: int,
               dtype: torch.dtype, device: torch.device | str, training: bool) -> bool:
    """True when the native kernel beats torch.nn for this shape on CPU (see bench/layers.py)."""
    if _loader.native is None or torch.device(device).type != "cpu":
        return False
    if dtype not in (torch.float32, torch.float64):
        return False
    return mode != "LSTM" or batch <= LSTM_MAX_BATCH
