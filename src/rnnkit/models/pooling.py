"""Pooling per-step outputs of a padded batch into one vector per sequence (valid steps only)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from rnnkit.models._recurrent import top_layer_summary

Pooling = Literal["last", "mean", "max"]


def valid_mask(lengths: Tensor, seq_len: int) -> Tensor:
    """``(batch, seq)`` bool, True at steps before each row's length."""
    steps = torch.arange(seq_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def pool(
    mode: Pooling, outputs: Tensor, lengths: Tensor, final_hidden: Tensor, directions: int
) -> Tensor:
    """Summarise each sequence: ``(batch, directions * hidden)``.

    - ``outputs``: ``(batch, seq, directions * hidden)`` from the recurrent layer.
    - ``lengths``: ``(batch,)`` true lengths, each >= 1.
    - ``final_hidden``: ``(num_layers * directions, batch, hidden)`` ``h_n``.
    - ``mode``: ``'last'`` is the top layer's ``h_n`` — the forward state at the last valid step
      and, when bidirectional, the reverse state after reading step 0 (the whole sequence);
      ``'mean'``/``'max'`` reduce over valid steps only.
    """
    if mode == "last":
        return top_layer_summary(final_hidden, directions)
    mask = valid_mask(lengths.to(outputs.device), outputs.shape[1]).unsqueeze(-1)  # (b, s, 1)
    if mode == "mean":
        total = outputs.masked_fill(~mask, 0.0).sum(dim=1)  # (batch, features)
        return total / lengths.to(outputs.device).clamp(min=1).unsqueeze(-1).to(outputs.dtype)
    if mode == "max":
        return outputs.masked_fill(~mask, float("-inf")).amax(dim=1)
    raise ValueError(f"mode: expected one of 'last', 'mean', 'max', got {mode!r}")
