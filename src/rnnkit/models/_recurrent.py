"""The recurrent stack every model is built on: a factory from a cell name and helpers for its
states (models call the layer directly, with ``lengths=`` or ``step()``).

Batches are ``batch_first``; states follow ``torch.nn``: ``(num_layers * directions, batch,
hidden)`` or an ``(h, c)`` tuple for LSTM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from rnnkit import nn as rnn_layers
from rnnkit.models._config import RecurrentOptions

State = Tensor | tuple[Tensor, Tensor]

_LAYERS: dict[str, type[rnn_layers.RecurrentBase]] = {
    "rnn": rnn_layers.RNN,
    "lstm": rnn_layers.LSTM,
    "gru": rnn_layers.GRU,
}


def build_rnn(
    options: RecurrentOptions, input_size: int, *, bidirectional: bool = False, proj_size: int = 0
) -> rnn_layers.RecurrentBase:
    """A ``batch_first`` :mod:`rnnkit.nn` layer of ``options.cell`` over ``input_size`` features."""
    kwargs: dict = {
        "num_layers": options.num_layers,
        "batch_first": True,
        "dropout": options.dropout if options.num_layers > 1 else 0.0,
        "bidirectional": bidirectional,
        "recurrent_dropout": options.recurrent_dropout,
    }
    if proj_size:
        kwargs["proj_size"] = proj_size
    if options.cell != "rnn":
        kwargs["zoneout"] = options.zoneout
        kwargs["layer_norm"] = options.layer_norm
    return _LAYERS[options.cell](input_size, options.hidden_size, **kwargs)


def map_state(state: State, function: Callable[[Tensor], Tensor]) -> State:
    """Apply ``function`` to ``h`` (and ``c`` for LSTM)."""
    if isinstance(state, tuple):
        return tuple(function(part) for part in state)  # type: ignore[return-value]
    return function(state)


def detach_state(state: State) -> State:
    """The same state cut from the autograd graph (truncated BPTT)."""
    return map_state(state, Tensor.detach)


def top_layer_summary(final_hidden: Tensor, directions: int) -> Tensor:
    """The top layer's final ``h`` with directions side by side: ``(batch, directions * hidden)``.

    ``final_hidden`` is ``(num_layers * directions, batch, hidden)``.
    """
    top = final_hidden[-directions:]  # (directions, batch, hidden)
    return top.transpose(0, 1).reshape(top.shape[1], -1)  # (batch, directions * hidden)


def final_hidden(state: State) -> Tensor:
    """``h_n`` of a state (drops LSTM's cell state)."""
    return state[0] if isinstance(state, tuple) else state


def embed_tokens(embedding: nn.Embedding, tokens: Tensor, argument: str = "tokens") -> Tensor:
    """Look up ``tokens`` ``(batch, seq)`` with a clear error for ids outside the vocabulary."""
    if tokens.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{argument}: expected an integer tensor of token ids, got {tokens.dtype}")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= embedding.num_embeddings):
        raise ValueError(
            f"{argument}: expected ids in [0, {embedding.num_embeddings}), got values in "
            f"[{int(tokens.min())}, {int(tokens.max())}]"
        )
    return embedding(tokens)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run inference without dropout, restoring the previous training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
