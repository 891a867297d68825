"""A linear-chain conditional random field over per-token emission scores.

The score of tags ``y`` for emissions ``E`` ``(seq, num_tags)`` is ``start[y_0] + Σ_t E[t, y_t]
+ Σ_t transitions[y_(t-1), y_t] + end[y_last]``; training minimises ``log Z - score(gold)``
(the forward algorithm computes ``log Z``), decoding finds the best-scoring path (Viterbi).
Forbidden transitions (e.g. ``O → I-PER`` in BIO) get a score of :data:`FORBIDDEN`, so no
decoded path uses them and the normaliser ignores them. Everything is vectorised over the
batch; rows shorter than the padded length stop at their own ``lengths``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rnnkit.data.batch import IGNORE_INDEX

FORBIDDEN = -10_000.0
"""Score of a forbidden transition: finite (so gradients stay finite), far below any path."""


class LinearChainCRF(nn.Module):
    """CRF layer with learned ``transitions (num_tags, num_tags)`` (from, to), ``start`` and
    ``end`` scores ``(num_tags,)``.

    ``forbidden``: ``[from, to]`` tag-id pairs never allowed; ``from == num_tags`` stands for
    the sentence start and ``to == num_tags + 1`` for its end (the form
    :func:`rnnkit.data.spans.forbidden_transitions` returns).
    """

    def __init__(self, num_tags: int, forbidden: Sequence[Sequence[int]] = ()) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags: expected an integer >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        allowed = torch.ones(num_tags + 1, num_tags + 2, dtype=torch.bool)
        for pair in forbidden:
            source, target = int(pair[0]), int(pair[1])
            if not (0 <= source <= num_tags and 0 <= target <= num_tags + 1
                    and target != num_tags):
                raise ValueError(f"forbidden: expected [from, to] with from in [0, {num_tags}] "
                                 f"and to in [0, {num_tags}) or {num_tags + 1}, got {list(pair)}")
            allowed[source, target] = False
        self.register_buffer("allowed", allowed, persistent=False)

    def scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """Transitions, start and end with forbidden entries set to :data:`FORBIDDEN`."""
        tags, allowed = self.num_tags, self.allowed
        forbidden = torch.tensor(FORBIDDEN, dtype=self.transitions.dtype,
                                 device=self.transitions.device)
        return (torch.where(allowed[:tags, :tags], self.transitions, forbidden),
                torch.where(allowed[tags, :tags], self.start, forbidden),
                torch.where(allowed[:tags, tags + 1], self.end, forbidden))

    def _check(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions: expected shape (batch, seq, {self.num_tags}), "
                             f"got {tuple(emissions.shape)}")
        lengths = torch.as_tensor(lengths, dtype=torch.int64, device=emissions.device)
        if lengths.shape != emissions.shape[:1]:
            raise ValueError(f"lengths: expected shape ({emissions.shape[0]},), "
                             f"got {tuple(lengths.shape)}")
        if lengths.numel() and (lengths.min() < 1 or lengths.max() > emissions.shape[1]):
            raise ValueError(f"lengths: expected values in [1, {emissions.shape[1]}], got "
                             f"[{int(lengths.min())}, {int(lengths.max())}]")
        return lengths

    def log_partition(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """``log Z`` per row ``(batch,)`` by the forward algorithm; ``emissions`` ``(batch, seq,
        num_tags)``, ``lengths`` ``(batch,)``."""
        lengths = self._check(emissions, lengths)
        transitions, start, end = self.scores()
        alpha = start + emissions[:, 0]  # (batch, tags)
        for step in range(1, emissions.shape[1]):
            scores = alpha.unsqueeze(2) + transitions + emissions[:, step].unsqueeze(1)
            alpha = torch.where((step < lengths).unsqueeze(1), scores.logsumexp(dim=1), alpha)
        return (alpha + end).logsumexp(dim=1)

    def path_score(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Score of ``tags`` ``(batch, seq)`` per row ``(batch,)`` (padding ignored)."""
        lengths = self._check(emissions, lengths)
        transitions, start, end = self.scores()
        mask = torch.arange(emissions.shape[1], device=emissions.device) < lengths.unsqueeze(1)
        tags = torch.where(mask, tags, torch.zeros_like(tags))
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (batch, seq)
        moved = transitions[tags[:, :-1], tags[:, 1:]]  # (batch, seq - 1)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        zero = emitted.new_zeros(())
        return (start[tags[:, 0]] + torch.where(mask, emitted, zero).sum(1)
                + torch.where(mask[:, 1:], moved, zero).sum(1) + end[last])

    def nll(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Negative log-likelihood of ``tags`` per row ``(batch,)``."""
        return self.log_partition(emissions, lengths) - self.path_score(emissions, tags, lengths)

    def decode(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """Best tag ids ``(batch, seq)`` by Viterbi, ``IGNORE_INDEX`` at padded positions."""
        lengths = self._check(emissions, lengths)
        transitions, start, end = self.scores()
        batch, seq, tags = emissions.shape
        score = start + emissions[:, 0]
        keep = torch.arange(tags, device=emissions.device).expand(batch, tags)
        history = []
        for step in range(1, seq):
            best, source = (score.unsqueeze(2) + transitions).max(dim=1)  # (batch, tags)
            active = (step < lengths).unsqueeze(1)
            score = torch.where(active, best + emissions[:, step], score)
            history.append(torch.where(active, source, keep))  # past the end: stay put
        current = (score + end).argmax(dim=1)
        path = [current]
        for source in reversed(history):
            current = source.gather(1, current.unsqueeze(1)).squeeze(1)
            path.append(current)
        decoded = torch.stack(path[::-1], dim=1)
        mask = torch.arange(seq, device=emissions.device) < lengths.unsqueeze(1)
        return decoded.masked_fill(~mask, IGNORE_INDEX)
