"""Attention over encoder outputs for the seq2seq decoder, with padded source positions masked.

- ``bahdanau``: additive, ``score(q, k) = v · tanh(W_q q + W_k k)`` (Bahdanau et al. 2015).
- ``luong_dot``: ``score(q, k) = q · k`` (Luong et al. 2015); needs equal query and key sizes.
- ``luong_general``: ``score(q, k) = q · W k``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

AttentionKind = Literal["none", "bahdanau", "luong_dot", "luong_general"]


class Attention(nn.Module):
    """Scores a query against every key, softmaxes over valid keys and averages the keys.

    ``forward(query (batch, query_size), keys (batch, src, key_size), mask (batch, src) bool)``
    returns ``context (batch, key_size)`` and ``weights (batch, src)`` (zero where ``mask`` is
    False; each row sums to 1). Keys must be projected once per sequence with
    :meth:`prepare_keys`, so the per-step cost is one matrix-vector product.
    """

    def __init__(self, kind: AttentionKind, query_size: int, key_size: int) -> None:
        super().__init__()
        if kind == "luong_dot" and query_size != key_size:
            raise ValueError(
                "attention='luong_dot' needs the decoder hidden size to equal the encoder output "
                f"size, got {query_size} and {key_size}; use 'luong_general' or 'bahdanau'"
            )
        self.kind = kind
        if kind == "bahdanau":
            self.query_projection = nn.Linear(query_size, query_size, bias=False)
            self.key_projection = nn.Linear(key_size, query_size)
            self.score_vector = nn.Linear(query_size, 1, bias=False)
        elif kind == "luong_general":
            self.key_projection = nn.Linear(key_size, query_size, bias=False)
        elif kind != "luong_dot":
            raise ValueError(
                f"kind: expected 'bahdanau', 'luong_dot' or 'luong_general', got {kind!r}"
            )

    def prepare_keys(self, keys: Tensor) -> Tensor:
        """Project ``keys`` ``(batch, src, key_size)`` once per source sequence."""
        return keys if self.kind == "luong_dot" else self.key_projection(keys)

    def scores(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        """Unnormalised scores ``(batch, tgt, src)`` for queries ``(batch, tgt, query_size)``."""
        if self.kind == "bahdanau":
            # (batch, tgt, 1, q) + (batch, 1, src, q) → (batch, tgt, src, q) → (batch, tgt, src)
            combined = self.query_projection(query).unsqueeze(2) + projected_keys.unsqueeze(1)
            return self.score_vector(torch.tanh(combined)).squeeze(-1)
        return torch.bmm(query, projected_keys.transpose(1, 2))  # (batch, tgt, src)

    def forward(
        self, query: Tensor, keys: Tensor, projected_keys: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Attend with queries ``(batch, tgt, query_size)`` (or ``(batch, query_size)`` for one
        step). Returns ``context`` ``(batch, tgt, key_size)`` and ``weights`` ``(batch, tgt, src)``
        (squeezed back when a single step was given)."""
        single_step = query.dim() == 2
        if single_step:
            query = query.unsqueeze(1)  # (batch, 1, query_size)
        scores = self.scores(query, projected_keys)
        weights = scores.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(dim=-1)
        weights = torch.nan_to_num(weights, nan=0.0)  # rows with no valid source step
        context = torch.bmm(weights, keys)  # (batch, tgt, key_size)
        if single_step:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights
