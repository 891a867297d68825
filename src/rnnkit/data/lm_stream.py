"""The char-rnn layout for language models: parallel contiguous streams, consecutive chunks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .batch import TokenBatch


class LanguageModelStream:
    """Cut one long token stream into ``batch_size`` parallel streams read ``seq_len`` at a time.

    Row ``b`` of every batch continues row ``b`` of the previous batch, so a model may carry
    its (detached) hidden state from one batch to the next. Targets are the next tokens.
    Each stream holds ``(len(ids) - 1) // batch_size`` inputs; the trailing remainder is
    dropped. The last chunk may be shorter than ``seq_len``.

    Batches: ``TokenBatch(tokens (batch, seq), lengths (batch,), targets (batch, seq))``.
    Implements the batch-source contract: ``iter_epoch(epoch, start=0)`` and ``len()``.
    The layout is the same every epoch unless ``random_offset``, which starts the streams at a
    seeded per-epoch offset in ``[0, seq_len)`` so chunk boundaries move between epochs.
    """

    def __init__(
        self, ids: Sequence[int] | np.ndarray | torch.Tensor, batch_size: int, seq_len: int,
        seed: int = 0, random_offset: bool = False,
    ):
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
        # Compact ids (uint8/int16/int32 from rnnkit.data.text_ids) stay compact: a 2 GB text
        # would take 16 GB as int64. Each batch is widened to int64 when it is cut.
        array = np.asarray(ids)
        if array.dtype.kind not in "iu" or array.dtype.itemsize > 4 or array.dtype == np.uint32:
            array = array.astype(np.int64)
        self.ids = torch.from_numpy(np.ascontiguousarray(array)).flatten()
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.seed = seed
        self.random_offset = random_offset
        if self._steps_per_stream(seq_len - 1 if random_offset else 0) < 1:
            raise ValueError(
                f"a stream of {len(self.ids)} tokens is too short for batch_size {batch_size}"
                + (f" with random offsets up to {seq_len - 1}" if random_offset else "")
            )

    def _steps_per_stream(self, offset: int) -> int:
        return (len(self.ids) - offset - 1) // self.batch_size

    def _offset(self, epoch: int) -> int:
        if not self.random_offset:
            return 0
        return int(np.random.default_rng([self.seed, epoch]).integers(self.seq_len))

    def __len__(self) -> int:
        """Batches per epoch (the count with the largest possible offset when it varies)."""
        worst = self.seq_len - 1 if self.random_offset else 0
        return -(-self._steps_per_stream(worst) // self.seq_len)

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[TokenBatch]:
        """Yield the epoch's batches from batch index ``start`` on (cheap: nothing before it
        is built)."""
        offset = self._offset(epoch)
        steps = self._steps_per_stream(offset)
        steps = min(steps, len(self) * self.seq_len)  # same batch count in every epoch
        span = self.batch_size * steps
        inputs = self.ids[offset: offset + span].view(self.batch_size, steps)
        targets = self.ids[offset + 1: offset + span + 1].view(self.batch_size, steps)
        for index in range(start, len(self)):
            chunk = slice(index * self.seq_len, min((index + 1) * self.seq_len, steps))
            tokens = inputs[:, chunk].long()
            lengths = torch.full((self.batch_size,), tokens.shape[1], dtype=torch.int64)
            yield TokenBatch(tokens, lengths, targets[:, chunk].long())
