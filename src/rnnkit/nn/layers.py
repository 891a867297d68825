"""``RNN``, ``LSTM`` and ``GRU``: drop-in replacements for their ``torch.nn`` namesakes."""

from __future__ import annotations

from rnnkit.nn.base import RecurrentBase
from rnnkit.nn.checks import check_nonlinearity

# torch.nn.RNN/GRU raise ValueError for any proj_size keyword (even 0); a sentinel default
# tells "not given" from every value a caller could pass.
_NOT_GIVEN = object()


def _reject_proj_size(proj_size: object) -> None:
    if proj_size is not _NOT_GIVEN:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU "
                         f"(got proj_size={proj_size!r})")

_SHAPES = """
    Shapes (``L`` sequence length, ``N`` batch, ``D`` = 2 if bidirectional else 1,
    ``H`` hidden_size, ``P`` proj_size if set else H):

    - ``input``: ``(L, N, input_size)``, ``(N, L, input_size)`` with ``batch_first=True``,
      ``(L, input_size)`` unbatched, or a ``PackedSequence``.
    - ``output``: ``(L, N, D*P)`` (``(N, L, D*P)`` with ``batch_first``), or a
      ``PackedSequence`` when the input was one.
    - ``h_0`` / ``h_n``: ``(D*num_layers, N, P)``; LSTM ``c_0`` / ``c_n``:
      ``(D*num_layers, N, H)`` (without the ``N`` axis for unbatched input).

    ``forward(input, hx=None, *, lengths=None)``: ``lengths`` (list or integer tensor of ``N``
    lengths, any order, any device) marks the valid steps of each row. Padded positions of
    ``output`` are zero; ``h_n`` holds the state after each row's last valid step in the
    forward direction and after step 0 in the reverse direction; a row of length 0 outputs
    zeros and returns ``h_0``.

    Beyond ``torch.nn`` (keyword-only; the defaults give exactly torch's layer):

    - ``backend``: ``'auto' | 'native' | 'torch' | 'python'`` or ``None`` for the global
      default (:func:`rnnkit.nn.set_backend`).
    - ``recurrent_dropout``: variational dropout on ``h_{t-1}``, one mask per sequence.
"""

_LSTM_GRU_EXTRAS = """    - ``zoneout``: probability that a unit keeps its previous state at a step.
    - ``layer_norm``: layer normalisation of the input and recurrent gate projections
      (and of the LSTM cell state), with learnable gains and biases.
"""


class RNN(RecurrentBase):
    __doc__ = (
        """Elman RNN with ``tanh`` or ``ReLU`` non-linearity; each layer computes

        h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

    where ``x_t`` is the input of the layer at step ``t`` (the output of the layer below for
    layers above the first).
    """
        + _SHAPES
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        backend: str | None = None,
        recurrent_dropout: float = 0.0,
        proj_size: object = _NOT_GIVEN,
    ) -> None:
        _reject_proj_size(proj_size)
        self.nonlinearity = check_nonlinearity(nonlinearity)
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
            num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype,
            backend=backend, recurrent_dropout=recurrent_dropout,
        )

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity='relu'"


class LSTM(RecurrentBase):
    __doc__ = (
        """Long short-term memory; each layer computes, with gate order ``i, f, g, o``,

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        h_t = o_t ⊙ tanh(c_t)              (h_t = W_hr h_t with proj_size > 0)
    """
        + _SHAPES
        + _LSTM_GRU_EXTRAS
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        backend: str | None = None,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, proj_size, device, dtype, backend=backend,
            recurrent_dropout=recurrent_dropout, zoneout=zoneout, layer_norm=layer_norm,
        )


class GRU(RecurrentBase):
    __doc__ = (
        """Gated recurrent unit (torch's formulation: the reset gate scales ``W_hn h + b_hn``)

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    """
        + _SHAPES
        + _LSTM_GRU_EXTRAS
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        backend: str | None = None,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
        proj_size: object = _NOT_GIVEN,
    ) -> None:
        _reject_proj_size(proj_size)
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, 0, device, dtype, backend=backend,
            recurrent_dropout=recurrent_dropout, zoneout=zoneout, layer_norm=layer_norm,
        )
