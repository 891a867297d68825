"""Truncated backpropagation through time over one long text, as char-rnn trains.

The data layer cuts the text into ``batch`` parallel streams and serves consecutive chunks of
each stream; the final state of one chunk is the (detached) initial state of the next, so the
model sees unbounded context while gradients flow through at most one chunk.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from rnnkit.data.batch import TokenBatch
from rnnkit.models._recurrent import State, detach_state
from rnnkit.models.losses import require_targets, token_cross_entropy


class TruncatedBPTTLoss:
    """Stateful loss for consecutive chunks: ``loss = tbptt(model, batch)``.

    ``model`` must have ``loss(batch, state)`` and ``forward(tokens, lengths, state)`` like
    :class:`~rnnkit.models.LanguageModel`. The carried state is reset when the batch size
    changes (e.g. a short final batch) and by :meth:`reset` (e.g. at each epoch start).
    :meth:`state_dict` holds tensors only, so a checkpoint can store it for exact resume.
    ``state_row_dim`` tells the trainer that those tensors hold the batch rows along dimension 1,
    so a data-parallel run checkpoints every rank's rows as one state.
    """

    state_row_dim = 1  # state tensors are (layers, batch, hidden)

    def __init__(self) -> None:
        self.state: State | None = None

    def __call__(self, model: nn.Module, batch: TokenBatch) -> Tensor:
        """Loss on ``batch`` starting from the carried state; carries the new state forward."""
        if self.state is not None and _batch_size(self.state) != len(batch):
            self.state = None
        logits, final_state = model(batch.tokens, batch.lengths, self.state)
        self.state = detach_state(final_state)
        return token_cross_entropy(logits, require_targets(batch.targets))

    def reset(self) -> None:
        """Forget the carried state; the next batch starts from zeros."""
        self.state = None

    def state_dict(self) -> dict[str, Any]:
        """``{}``, ``{'h': h}`` or ``{'h': h, 'c': c}``: tensors ``(layers, batch, hidden)``."""
        if self.state is None:
            return {}
        if isinstance(self.state, tuple):
            return {"h": self.state[0].clone(), "c": self.state[1].clone()}
        return {"h": self.state.clone()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        unknown = set(state_dict) - {"h", "c"}
        if unknown or ("c" in state_dict and "h" not in state_dict):
            raise ValueError(
                f"state_dict: expected keys 'h' and optionally 'c', got {sorted(state_dict)}"
            )
        if not state_dict:
            self.state = None
        elif "c" in state_dict:
            self.state = (state_dict["h"].clone(), state_dict["c"].clone())
        else:
            self.state = state_dict["h"].clone()


def _batch_size(state: State) -> int:
    return (state[0] if isinstance(state, tuple) else state).shape[1]
