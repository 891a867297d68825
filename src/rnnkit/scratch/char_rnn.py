"""A character-level language model in NumPy, in the spirit of Karpathy's min-char-rnn.

The model reads one character at a time and predicts the next::

    x_t      = onehot(char_t)                       (V,)   V = vocabulary size
    h_t      = recurrent cell(x_t, h_{t-1})         (P,)   RNN, LSTM or GRU, 1+ layers
    logits_t = W_hy h_t + b_y                       (V,)
    p_t      = softmax(logits_t)                    loss_t = -log p_t[char_{t+1}]

Training walks through the text in chunks of ``seq_length`` characters; the hidden state is
carried from one chunk to the next but gradients are not (truncated BPTT). Gradients are
clipped by global norm, then Adagrad or Adam takes a step. Sampling feeds each drawn character
back in; the temperature divides the logits (below 1: safer, above 1: more adventurous).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.scratch._validate import check_positive_float, check_positive_int
from rnnkit.scratch.clip import clip_grad_norm
from rnnkit.scratch.functional import softmax
from rnnkit.scratch.layer import Params
from rnnkit.scratch.loss import softmax_cross_entropy
from rnnkit.scratch.optim import Adagrad, Adam
from rnnkit.scratch.stacked import GRU, LSTM, RNN, StackCache, StackedRecurrent

_CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
_OPTIMIZERS = {"adagrad": Adagrad, "adam": Adam}


@dataclass(frozen=True)
class CharRNNConfig:
    """Model and training settings of :class:`CharRNN` and :class:`CharRNNTrainer`."""

    hidden_size: int = 100
    cell: str = "rnn"  # "rnn" (tanh), "lstm" or "gru"
    num_layers: int = 1
    optimizer: str = "adagrad"  # "adagrad" or "adam"
    learning_rate: float = 0.1
    max_grad_norm: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_int("num_layers", self.num_layers)
        check_positive_float("learning_rate", self.learning_rate)
        check_positive_float("max_grad_norm", self.max_grad_norm)
        if self.cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {self.cell!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(_OPTIMIZERS)}, got {self.optimizer!r}"
            )


class Vocabulary:
    """The distinct characters of a text, each given an id (sorted, so ids are reproducible)."""

    def __init__(self, chars: str) -> None:
        if not chars or len(set(chars)) != len(chars):
            raise ValueError(
                f"chars must be a non-empty string of distinct characters, got {chars!r}"
            )
        self.chars = chars
        self._ids = {char: index for index, char in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        """The vocabulary of every character in ``text``."""
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Character ids of ``text``, ``(len(text),)`` int64."""
        unknown = set(text) - self._ids.keys()
        if unknown:
            raise ValueError(f"text has characters not in the vocabulary: {sorted(unknown)}")
        return np.array([self._ids[char] for char in text], dtype=np.int64)

    def decode(self, ids: Any) -> str:
        """The text of character ids."""
        return "".join(self.chars[int(index)] for index in ids)


class CharRNN:
    """One-hot input -> recurrent stack -> linear layer -> logits over the vocabulary.

    ``params`` holds every parameter: the recurrent stack's under ``rnn.`` + torch's names, and
    ``output.weight`` ``(V, P)`` and ``output.bias`` ``(V,)``. Batch size is 1.
    """

    def __init__(self, vocab_size: int, config: CharRNNConfig | None = None) -> None:
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.config = config or CharRNNConfig()
        rng = np.random.default_rng(self.config.seed)
        make_rnn = _CELLS[self.config.cell]
        self.rnn: StackedRecurrent = make_rnn(
            vocab_size, self.config.hidden_size, self.config.num_layers, rng=rng
        )
        bound = 1.0 / np.sqrt(self.rnn.state_size)  # torch.nn.Linear's initialisation
        self.output = {
            "weight": rng.uniform(-bound, bound, (vocab_size, self.rnn.state_size)),
            "bias": rng.uniform(-bound, bound, vocab_size),
        }
        self.params: Params = {f"rnn.{k}": v for k, v in self.rnn.params.items()}
        self.params |= {f"output.{k}": v for k, v in self.output.items()}

    def _one_hot(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.size == 0 or ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(
                f"ids must be a non-empty 1-d array of ids in [0, {self.vocab_size}), got {ids!r}"
            )
        return np.eye(self.vocab_size)[ids][:, None, :]  # (seq, batch=1, V)

    def forward(self, ids: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any, StackCache]:
        """``ids`` ``(seq,)`` -> ``(logits (seq, V), final state, cache)``."""
        _, logits, final_state, cache = self._run(ids, state)
        return logits, final_state, cache

    def _run(self, ids: np.ndarray, state: Any) -> tuple[np.ndarray, np.ndarray, Any, StackCache]:
        hidden, final_state, cache = self.rnn.forward(self._one_hot(ids), state)
        hidden = hidden[:, 0, :]  # (seq, P): drop the batch axis of size 1
        logits = hidden @ self.output["weight"].T + self.output["bias"]
        return hidden, logits, final_state, cache

    def loss_and_grads(
        self, input_ids: np.ndarray, target_ids: np.ndarray, state: Any = None
    ) -> tuple[float, Params, Any]:
        """Mean next-character cross-entropy over the chunk, its gradients, and the final state.

        ``input_ids`` and ``target_ids`` are ``(seq,)``; usually ``target_ids`` is the input
        shifted by one character.
        """
        hidden, logits, final_state, cache = self._run(input_ids, state)
        loss, grad_logits = softmax_cross_entropy(logits, np.asarray(target_ids))
        grads = {
            "output.weight": grad_logits.T @ hidden,
            "output.bias": grad_logits.sum(axis=0),
        }
        grad_hidden = (grad_logits @ self.output["weight"])[:, None, :]
        _, _, rnn_grads = self.rnn.backward(cache, grad_hidden)
        grads |= {f"rnn.{k}": v for k, v in rnn_grads.items()}
        return loss, grads, final_state

    def predict(self, ids: np.ndarray, state: Any = None) -> np.ndarray:
        """The most likely next character after each of ``ids`` ``(seq,)``: ``(seq,)`` ids."""
        logits, _, _ = self.forward(ids, state)
        return logits.argmax(axis=1)

    def sample(
        self,
        first_id: int,
        length: int,
        rng: np.random.Generator,
        temperature: float = 1.0,
        state: Any = None,
    ) -> np.ndarray:
        """Draw ``length`` characters after feeding ``first_id``; returns ``(length,)`` ids."""
        check_positive_int("length", length)
        temperature = check_positive_float("temperature", temperature)
        drawn = np.empty(length, dtype=np.int64)
        current = first_id
        for step in range(length):
            logits, state, _ = self.forward(np.array([current]), state)
            probabilities = softmax(logits[0] / temperature)
            current = rng.choice(self.vocab_size, p=probabilities)
            drawn[step] = current
        return drawn


class CharRNNTrainer:
    """One training step at a time: loss and gradients, clipping, optimizer update."""

    def __init__(self, model: CharRNN) -> None:
        self.model = model
        config = model.config
        self.optimizer = _OPTIMIZERS[config.optimizer](model.params, lr=config.learning_rate)

    def step(
        self, input_ids: np.ndarray, target_ids: np.ndarray, state: Any = None
    ) -> tuple[float, float, Any]:
        """Train on one chunk; returns ``(loss, gradient norm before clipping, final state)``."""
        loss, grads, final_state = self.model.loss_and_grads(input_ids, target_ids, state)
        clipped, norm = clip_grad_norm(grads, self.model.config.max_grad_norm)
        self.optimizer.step(clipped)
        return loss, norm, final_state


def iterate_chunks(
    ids: np.ndarray, seq_length: int
) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
    """Endless ``(input_ids, target_ids, restart)`` chunks of ``seq_length`` through ``ids``.

    Targets are the inputs shifted by one. ``restart`` is True at the first chunk of each pass
    over the text, where the hidden state should be reset (the text's end does not lead into
    its start). A text too short for ``seq_length`` gives shorter chunks.
    """
    seq_length = check_positive_int("seq_length", seq_length)
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size < 2:
        raise ValueError(f"ids must be a 1-d array of at least 2 ids, got shape {ids.shape}")
    length = min(seq_length, ids.size - 1)
    while True:
        for position in range(0, ids.size - length, length):
            inputs = ids[position : position + length]
            targets = ids[position + 1 : position + 1 + length]
            yield inputs, targets, position == 0
