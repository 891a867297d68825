"""Character-level word features: each word's characters → one vector, so that words never
seen in training (names, hashtags, misspellings) still get a representation from their
spelling and case. A char-CNN (Ma & Hovy 2016) or a char-BiLSTM (Lample et al. 2016)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from rnnkit import nn as rnn

CharFeatures = Literal["none", "cnn", "lstm"]
CHAR_PAD_ID = 0
"""Character id of padding (shorter words, padded words): the char vocabulary's ``<pad>``."""


class CharCNN(nn.Module):
    """``chars (batch, seq, word_len)`` → ``(batch, seq, output_size)``: char embeddings, a
    width-3 convolution, max over each word's real characters (zero for padded words)."""

    def __init__(self, num_chars: int, embedding_size: int, output_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, embedding_size, padding_idx=CHAR_PAD_ID)
        self.conv = nn.Conv1d(embedding_size, output_size, kernel_size=3, padding=1)
        self.output_size = output_size

    def forward(self, chars: Tensor) -> Tensor:
        batch, seq, width = chars.shape
        flat = chars.reshape(batch * seq, width)
        convolved = self.conv(self.embedding(flat).transpose(1, 2))  # (words, out, width)
        real = (flat != CHAR_PAD_ID).unsqueeze(1)
        pooled = convolved.masked_fill(~real, float("-inf")).amax(dim=2)
        pooled = torch.where(real.any(dim=2), pooled, torch.zeros_like(pooled))
        return pooled.reshape(batch, seq, self.output_size)


class CharLSTM(nn.Module):
    """``chars (batch, seq, word_len)`` → ``(batch, seq, output_size)``: a bidirectional LSTM
    over each word's characters; the two final states, concatenated (zero for padded words)."""

    def __init__(self, num_chars: int, embedding_size: int, output_size: int) -> None:
        super().__init__()
        if output_size % 2:
            raise ValueError(f"char_hidden_size: expected an even number for the char-BiLSTM "
                             f"(half per direction), got {output_size}")
        self.embedding = nn.Embedding(num_chars, embedding_size, padding_idx=CHAR_PAD_ID)
        self.lstm = rnn.LSTM(embedding_size, output_size // 2, batch_first=True,
                             bidirectional=True)
        self.output_size = output_size

    def forward(self, chars: Tensor) -> Tensor:
        batch, seq, width = chars.shape
        flat = chars.reshape(batch * seq, width)
        lengths = (flat != CHAR_PAD_ID).sum(dim=1).cpu()
        # A padded word runs over one padding character (zeroed below): packed sequences, which
        # the exported torch.nn twin uses, refuse zero lengths.
        _, (final, _) = self.lstm(self.embedding(flat), lengths=lengths.clamp(min=1))
        features = torch.cat([final[0], final[1]], dim=-1)  # (words, output_size)
        features = features * (lengths > 0).to(features.device).unsqueeze(1)
        return features.reshape(batch, seq, self.output_size)


def build_char_encoder(kind: CharFeatures, num_chars: int, embedding_size: int,
                       output_size: int) -> CharCNN | CharLSTM | None:
    """The char encoder for ``kind`` (``None`` for ``'none'``)."""
    if kind == "none":
        return None
    encoder = CharCNN if kind == "cnn" else CharLSTM
    return encoder(num_chars, embedding_size, output_size)
