"""Choosing the next token from logits: greedy, temperature, top-k and nucleus (top-p) sampling,
and the autoregressive loop the generating models share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class SamplingOptions:
    """How to pick each next token.

    - ``temperature``: 0 is greedy (argmax); otherwise logits are divided by it before softmax.
    - ``top_k``: keep only the ``k`` most likely tokens (``None``: all).
    - ``top_p``: keep the smallest set of most likely tokens whose probability reaches ``p``
      (nucleus sampling; ``None`` or 1.0: all).
    - ``seed``: makes sampling reproducible without touching the global RNG.
    - ``banned_ids``: ids never produced (e.g. padding, unknown, BOS), greedy included.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    banned_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.temperature, int | float) or self.temperature < 0:
            raise ValueError(f"temperature: expected a number >= 0, got {self.temperature!r}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ValueError(f"top_k: expected an integer >= 1 or None, got {self.top_k!r}")
        if self.top_p is not None and not (
            isinstance(self.top_p, int | float) and 0.0 < self.top_p <= 1.0
        ):
            raise ValueError(f"top_p: expected a number in (0, 1] or None, got {self.top_p!r}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise TypeError(f"seed: expected an int or None, got {type(self.seed).__name__}")
        object.__setattr__(self, "banned_ids", tuple(self.banned_ids))  # frozen: lists from JSON
        if not all(isinstance(i, int) and i >= 0 for i in self.banned_ids):
            raise ValueError(f"banned_ids: expected token ids >= 0, got {self.banned_ids!r}")


def filter_top_k(logits: Tensor, k: int) -> Tensor:
    """Set all but the ``k`` largest logits of each row ``(batch, vocab)`` to ``-inf``."""
    if k >= logits.shape[-1]:
        return logits
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]  # (batch, 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def filter_top_p(logits: Tensor, p: float) -> Tensor:
    """Keep, per row ``(batch, vocab)``, the most likely tokens whose cumulative probability
    first reaches ``p`` (the most likely token is always kept); the rest become ``-inf``."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    # Drop a token when the tokens before it already reach p.
    drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def choose_next(
    logits: Tensor, options: SamplingOptions, generator: torch.Generator | None = None
) -> Tensor:
    """Pick one token id per row of ``logits`` ``(batch, vocab)`` → ``(batch,)``."""
    if options.banned_ids:
        logits = logits.index_fill(-1, torch.tensor(options.banned_ids, device=logits.device),
                                   float("-inf"))
    if options.temperature == 0:
        return logits.argmax(dim=-1)
    # Shifting the maximum to 0 first keeps tiny temperatures finite (-inf at worst, never NaN).
    scaled = (logits - logits.amax(dim=-1, keepdim=True)) / options.temperature
    if options.top_k is not None:
        scaled = filter_top_k(scaled, options.top_k)
    if options.top_p is not None:
        scaled = filter_top_p(scaled, options.top_p)
    probabilities = scaled.softmax(dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


def make_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A private RNG seeded with ``seed`` (``None``: use the global RNG)."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


StepFunction = Callable[[Tensor, Any], tuple[Tensor, Any]]
"""``step(token_ids (batch,), state) -> (logits (batch, vocab), state)``."""


@torch.no_grad()
def sample_sequence(
    step: StepFunction,
    logits: Tensor,
    state: Any,
    max_length: int,
    options: SamplingOptions,
    stop_id: int | None = None,
) -> list[int]:
    """Sample up to ``max_length`` tokens, one step at a time, carrying ``state``.

    ``logits`` ``(1, vocab)`` are the scores for the first token to produce. Stops early at
    ``stop_id``, which is not included in the result. Cost is O(``max_length``) steps.
    """
    if not isinstance(max_length, int) or max_length < 0:
        raise ValueError(f"max_length: expected an integer >= 0, got {max_length!r}")
    generator = make_generator(options.seed, logits.device)
    produced: list[int] = []
    for _ in range(max_length):
        token = choose_next(logits, options, generator)  # (1,)
        if stop_id is not None and int(token) == stop_id:
            break
        produced.append(int(token))
        if len(produced) < max_length:
            logits, state = step(token, state)
    return produced
