"""Batch containers shared by the data pipeline, the models and the training loop.

Every batch is a small dataclass of tensors with a ``to(device)`` method and ``len()`` equal to
its batch size. Token tensors are ``int64`` and padded with the vocabulary's pad id; per-token
targets are padded with :data:`IGNORE_INDEX` so that ``F.cross_entropy(ignore_index=...)``
skips padding without masks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

IGNORE_INDEX = -100
"""Target value at padded positions; losses and metrics skip it."""


class _BatchMixin:
    def to(self, device: torch.device | str):
        """Return a copy with every tensor moved to ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)  # type: ignore[arg-type]
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)  # type: ignore[type-var]


@dataclass
class TokenBatch(_BatchMixin):
    """Padded token sequences: language modelling, classification and tagging.

    - ``tokens``: ``(batch, seq)`` int64 ids, padded with the pad id.
    - ``lengths``: ``(batch,)`` int64 true lengths (CPU).
    - ``targets``: language model ``(batch, seq)`` next-token ids; classification ``(batch,)``
      class ids; tagging ``(batch, seq)`` tag ids. Padded positions hold ``IGNORE_INDEX``.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.tokens.shape[0]


@dataclass
class PairBatch(_BatchMixin):
    """Source/target token pairs for encoder-decoder models.

    - ``source``: ``(batch, src_seq)`` int64, ``source_lengths``: ``(batch,)``.
    - ``target``: ``(batch, tgt_seq)`` int64 starting with BOS and ending with EOS, padded with
      the pad id; ``target_lengths``: ``(batch,)`` counting BOS and EOS.
    """

    source: torch.Tensor
    source_lengths: torch.Tensor
    target: torch.Tensor
    target_lengths: torch.Tensor

    def __len__(self) -> int:
        return self.source.shape[0]


@dataclass
class WindowBatch(_BatchMixin):
    """Sliding windows over (scaled) time series for forecasting.

    - ``history``: ``(batch, lookback, features)`` float inputs.
    - ``future``: ``(batch, horizon, targets)`` float values to predict.
    - ``covariates``: ``(batch, lookback + horizon, future_covariates)`` covariates known over
      history and horizon, or ``None``; ``static``: ``(batch, static_covariates)`` or ``None``.
    """

    history: torch.Tensor
    future: torch.Tensor
    covariates: torch.Tensor | None = None
    static: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.history.shape[0]


@dataclass
class ConditionalBatch(_BatchMixin):
    """Sequences generated from a condition (one-to-many).

    - ``condition``: ``(batch,)`` int64 class ids, or ``(batch, condition_size)`` float vectors.
    - ``tokens``: ``(batch, seq)`` int64 decoder inputs starting with BOS.
    - ``lengths``: ``(batch,)`` true lengths of ``tokens``.
    - ``targets``: ``(batch, seq)`` next-token ids ending with EOS; padding is ``IGNORE_INDEX``.
    """

    condition: torch.Tensor
    tokens: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]
