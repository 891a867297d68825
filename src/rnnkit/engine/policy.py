"""``backend='auto'``: where the native engine is measured faster than torch.nn.

Measured with ``bench/layers.py --clock cpu`` on a 2-core AVX-512 Xeon (torch 2.13, MKL +
oneDNN; bench/results/layers_cpu1.md):
- nn.RNN / nn.GRU run a per-step loop of small ATen ops: the native engine wins at every
  batch up to 32 and, beyond, for hidden <= 128; at batch 128 with hidden >= 256 both are
  bound by the same GEMMs and torch's MKL is as fast (0.91-1.14x).
- nn.LSTM uses oneDNN's fused kernel: the native engine wins at batch 1 (1.1-1.3x in
  training, ~1.0x in inference) and loses in inference at batch >= 32 (0.66-0.82x).
"""

from __future__ import annotations

import torch

from rnnkit.engine import _loader

RNN_GRU_MAX_BATCH = 32
RNN_GRU_MAX_HIDDEN_LARGE_BATCH = 128  # beyond batch 32, native only for small layers
LSTM_MAX_BATCH = 4
LSTM_MAX_HIDDEN = {True: 512, False: 128}  # keyed by training


def should_use(mode: str, *, input_size: int, hidden_size: int, batch: int, seq_len: int,
               dtype: torch.dtype, device: torch.device | str, training: bool) -> bool:
    """True when the native kernel beats torch.nn for this shape on CPU (see bench/layers.py)."""
    if _loader.native is None or torch.device(device).type != "cpu":
        return False
    if dtype not in (torch.float32, torch.float64):
        return False
    if mode == "LSTM":
        return batch <= LSTM_MAX_BATCH and hidden_size <= LSTM_MAX_HIDDEN[bool(training)]
    return batch <= RNN_GRU_MAX_BATCH or hidden_size <= RNN_GRU_MAX_HIDDEN_LARGE_BATCH
