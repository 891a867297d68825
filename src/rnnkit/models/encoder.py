"""Token encoder shared by the classifier, the tagger and the seq2seq encoder:
embedding → dropout → (bidirectional) RNN over each row's true length."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.models._config import RecurrentOptions
from rnnkit.models._recurrent import State, build_rnn, embed_tokens


def check_lengths(
    lengths: Tensor | list[int] | None, tokens: Tensor, argument: str = "lengths"
) -> Tensor:
    """``lengths`` as an int64 tensor ``(batch,)`` with every value in ``[1, seq]``; ``None``
    means every row is full length. ``tokens`` is ``(batch, seq)``."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens: expected shape (batch, seq), got {tuple(tokens.shape)}")
    batch, seq = tokens.shape
    if lengths is None:
        return torch.full((batch,), seq, dtype=torch.int64)
    lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
    if lengths.shape != (batch,):
        raise ValueError(f"{argument}: expected shape ({batch},), got {tuple(lengths.shape)}")
    if batch and (lengths.min() < 1 or lengths.max() > seq):
        raise ValueError(
            f"{argument}: expected values in [1, {seq}], got [{int(lengths.min())}, "
            f"{int(lengths.max())}]"
        )
    return lengths


class SequenceEncoder(nn.Module):
    """``forward(tokens (batch, seq), lengths (batch,))`` → ``outputs (batch, seq, directions *
    hidden)`` (zero at padding) and the final state ``(layers * directions, batch, hidden)``.

    With ``extra_input_size`` > 0, ``forward`` also takes ``extra`` ``(batch, seq,
    extra_input_size)`` features (e.g. character-level word features) concatenated to the
    token embeddings."""

    def __init__(
        self, options: RecurrentOptions, vocab_size: int, embedding_size: int, bidirectional: bool,
        extra_input_size: int = 0,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.dropout = nn.Dropout(options.dropout)
        self.rnn = build_rnn(options, embedding_size + extra_input_size,
                             bidirectional=bidirectional)
        self.directions = 2 if bidirectional else 1
        self.output_size = self.directions * options.hidden_size

    def forward(
        self, tokens: Tensor, lengths: Tensor, extra: Tensor | None = None
    ) -> tuple[Tensor, State]:
        embedded = embed_tokens(self.embedding, tokens)  # (batch, seq, emb)
        if extra is not None:
            embedded = torch.cat([embedded, extra], dim=-1)
        return self.rnn(self.dropout(embedded), lengths=lengths)
