"""``RNNCell``, ``LSTMCell`` and ``GRUCell``: one time step, like their ``torch.nn`` namesakes.

Shapes: ``input`` ``(N, input_size)`` or unbatched ``(input_size,)``; states ``(N, H)`` or
``(H,)``. The equations are those of :mod:`rnnkit.nn.functional`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnkit.nn import checks, interop
from rnnkit.nn.functional import GATE_COUNT, DirectionWeights, cell_step, input_gates


class CellBase(nn.RNNCellBase):
    """Parameters ``weight_ih (G*H, input)``, ``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh``.

    A subclass of ``torch.nn.RNNCellBase`` for code that recognises cells by type; the
    constructor and forward are rnnkit's own.

    Arguments are accepted as ``torch.nn``'s cells accept them: sizes may be 0 (empty weights,
    empty outputs) and ``bias`` may be any value, its truth deciding whether the biases exist
    (``RNNCell(10, 20, 'relu')`` is a cell with biases and tanh, as in torch).
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, device,
                 dtype) -> None:
        nn.Module.__init__(self)  # not RNNCellBase.__init__: it would not check the sizes
        self.mode = mode
        self.input_size = checks.check_cell_size("input_size", input_size)
        self.hidden_size = checks.check_cell_size("hidden_size", hidden_size)
        self.bias = bias  # kept as given, like torch (its repr shows it)
        gate_size = GATE_COUNT[mode] * hidden_size
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(gate_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(gate_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gate_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(gate_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform ``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter, as ``torch.nn``.

        With ``hidden_size=0`` every parameter is empty; torch uses a bound of 0 then.
        """
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        return text if self.bias is True else f"{text}, bias={self.bias}"

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles: the ``torch.nn`` twin sharing the parameters.

        rnnkit's forward (keyword-only ``lengths``, several backends, Python-side checks) is
        not TorchScript; the twin computes the same function with torch's kernels.
        """
        return interop.to_torch(self)

    def _weights(self) -> DirectionWeights:
        return DirectionWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    def _prepare(self, x: Tensor, states: list[Tensor | None]) -> tuple[Tensor, list[Tensor], bool]:
        """``x (N, I)`` or ``(I,)`` and states -> ``(x (N, I), states [(N, H)], batched)``."""
        name = type(self).__name__
        checks.check_cell_input(name, x, self.input_size)
        batched = x.dim() == 2
        x = x if batched else x.unsqueeze(0)
        prepared, given = [], {"input": x}
        for index, state in enumerate(states):
            if state is None:
                prepared.append(x.new_zeros(x.shape[0], self.hidden_size))
                continue
            key = ("hx", "cx")[index]
            self._check_state_rank(name, key, index, state, batched)
            state = state if batched else state.unsqueeze(0)
            checks.check_cell_state(name, key, index, state, (x.shape[0], self.hidden_size))
            prepared.append(state)
            given[key] = state
        # Shapes first, then dtype and device: torch's cell kernels check in that order.
        for key, tensor in given.items():
            checks.check_same_kind(name, key, tensor, self.weight_ih)
        return x, prepared, batched

    def _check_state_rank(self, name: str, key: str, index: int, state: Tensor,
                          batched: bool) -> None:
        """1-D or 2-D (torch's ``ValueError``), and the same batching as the input."""
        if state.dim() not in (1, 2):
            label = f"hx[{index}]" if self.mode == "LSTM" else "hidden"
            raise ValueError(
                f"{name}: Expected {label} to be 1D or 2D, got {state.dim()}D instead "
                f"({key} of shape {tuple(state.shape)})")
        if state.dim() != (2 if batched else 1):
            raise checks.RecurrentInputError(
                f"{name}: {key} should be {'2' if batched else '1'}-D like the input, "
                f"got {state.dim()}-D tensor of shape {tuple(state.shape)}")

    def _step(self, x: Tensor, states: list[Tensor | None]) -> tuple[Tensor, Tensor | None, bool]:
        x, (h, *rest), batched = self._prepare(x, states)
        weights = self._weights()
        h_next, c_next = cell_step(self.mode, input_gates(x, weights), h, rest[0] if rest else None,
                                   weights)
        if not batched:
            h_next = h_next.squeeze(0)
            c_next = None if c_next is None else c_next.squeeze(0)
        return h_next, c_next, batched


class RNNCell(CellBase):
    """Elman cell: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or ReLU)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        # torch.nn.RNNCell only fails at forward (RuntimeError); rnnkit says so at once.
        self.nonlinearity = checks.check_nonlinearity(nonlinearity, checks.ArgumentValueError)
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, bias, device, dtype)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity={self.nonlinearity}"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """``input (N, input_size)``, ``hx (N, H)`` -> ``h' (N, H)``."""
        return self._step(input, [hx])[0]


class LSTMCell(CellBase):
    """LSTM cell (gates ``i, f, g, o``): ``c' = f ⊙ c + i ⊙ g``, ``h' = o ⊙ tanh(c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, Tensor]:
        """``input (N, input_size)``, ``hx = (h (N, H), c (N, H))`` -> ``(h', c')``."""
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell: hx should be a tuple (h_0, c_0), got {type(hx).__name__}")
        h_next, c_next, _ = self._step(input, list(hx) if hx is not None else [None, None])
        return h_next, c_next


class GRUCell(CellBase):
    """GRU cell: ``h' = (1 - z) ⊙ n + z ⊙ h``, ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """``input (N, input_size)``, ``hx (N, H)`` -> ``h' (N, H)``."""
        return self._step(input, [hx])[0]
