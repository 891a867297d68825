"""Argument validation for the engine's entry points (clear errors before raw pointers)."""

from __future__ import annotations

import torch
from torch import Tensor

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
MODE_IDS = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
DTYPES = (torch.float32, torch.float64)


def check_mode(mode: object) -> int:
    """The gate count of ``mode``, or a clear error."""
    if not isinstance(mode, str):
        raise TypeError(f"mode: expected a str, got {type(mode).__name__}")
    if mode not in GATES:
        raise ValueError(f"mode: expected one of {sorted(GATES)}, got {mode!r}")
    return GATES[mode]


def check_tensor(name: str, value: object, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """``value`` must be a CPU tensor of ``shape`` and ``dtype``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not value.is_cpu:
        raise ValueError(f"{name}: the native engine runs on CPU, got a tensor on {value.device}")
    if value.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (same as x), got {value.dtype}")
    if value.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(value.shape)}")


def check_lengths(lengths: object, batch: int, seq_len: int) -> Tensor | None:
    """``lengths`` as a contiguous int64 CPU tensor ``(batch,)`` with 0 <= len <= seq_len."""
    if lengths is None:
        return None
    if not isinstance(lengths, Tensor):
        raise TypeError(f"lengths: expected None or an int64 tensor, got {type(lengths).__name__}")
    if lengths.dtype != torch.int64 or lengths.shape != (batch,):
        raise ValueError(f"lengths: expected an int64 tensor of shape ({batch},), got "
                         f"{lengths.dtype} of shape {tuple(lengths.shape)}")
    lengths = lengths.to("cpu").contiguous()
    if batch and (int(lengths.min()) < 0 or int(lengths.max()) > seq_len):
        raise ValueError(f"lengths: expected values in [0, {seq_len}], got "
                         f"min {int(lengths.min())}, max {int(lengths.max())}")
    return lengths


def check_step_input(x_t: object) -> None:
    """``x_t`` must be a 2-D tensor ``(batch, input)``."""
    if not isinstance(x_t, Tensor) or x_t.dim() != 2:
        got = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
        raise ValueError(f"x_t: expected a 2-D tensor (batch, input), got {got}")


def check_weights(mode, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, input_size: int,
                  dtype: torch.dtype) -> tuple[int, int, int]:
    """Validate one layer-direction's weights; returns ``(gates, hidden, out_size)``."""
    gates = check_mode(mode)
    if not isinstance(weight_hh, Tensor) or weight_hh.dim() != 2:
        raise ValueError("weight_hh: expected a 2-D tensor (gates * hidden, out)")
    hidden = weight_hh.shape[0] // gates
    out_size = weight_hr.shape[0] if weight_hr is not None else hidden
    check_tensor("weight_ih", weight_ih, (gates * hidden, input_size), dtype)
    check_tensor("weight_hh", weight_hh, (gates * hidden, out_size), dtype)
    if weight_hr is not None:
        if mode != "LSTM":
            raise ValueError(f"weight_hr: projections exist only for LSTM, got mode {mode!r}")
        check_tensor("weight_hr", weight_hr, (out_size, hidden), dtype)
    if (bias_ih is None) != (bias_hh is None):
        raise ValueError("bias_ih, bias_hh: expected both or neither")
    if bias_ih is not None:
        check_tensor("bias_ih", bias_ih, (gates * hidden,), dtype)
        check_tensor("bias_hh", bias_hh, (gates * hidden,), dtype)
    return gates, hidden, out_size


def check_recurrence_args(mode, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr):
    """Validate one layer-direction's arguments; returns ``(gates, hidden, out_size)``."""
    check_mode(mode)
    _check_sequence("x", x, "(seq, batch, input)")
    _, batch, input_size = x.shape
    sizes = check_weights(mode, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, input_size,
                          x.dtype)
    _check_states(mode, h0, c0, batch, sizes, x.dtype)
    return sizes


def _check_sequence(name: str, x: object, layout: str) -> None:
    """``x`` must be a float32/float64 CPU tensor with as many dimensions as ``layout``."""
    dims = layout.count(",") + 1
    if not isinstance(x, Tensor) or x.dim() != dims:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a {dims}-D tensor {layout}, got {got}")
    if x.dtype not in DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {x.dtype}")
    if not x.is_cpu:
        raise ValueError(f"{name}: the native engine runs on CPU, got a tensor on {x.device}")


def _check_states(mode: str, h0, c0, batch: int, sizes: tuple[int, int, int],
                  dtype: torch.dtype) -> None:
    """``h0 (batch, out)`` and, for LSTM only, ``c0 (batch, hidden)``."""
    _, hidden, out_size = sizes
    check_tensor("h0", h0, (batch, out_size), dtype)
    if mode == "LSTM":
        check_tensor("c0", c0, (batch, hidden), dtype)
    elif c0 is not None:
        raise ValueError(f"c0: expected None for mode {mode!r}, got a tensor")


def check_packed_args(mode, data, offsets, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh,
                      weight_hr) -> tuple[int, int, int]:
    """Validate one layer-direction's arguments in the packed layout (``data (rows, input)``,
    ``offsets (steps + 1,)``); returns ``(gates, hidden, out_size)``. The offsets' values are
    checked by the native boundary (which never trusts them)."""
    check_mode(mode)
    _check_sequence("data", data, "(rows, input)")
    if not isinstance(offsets, Tensor) or offsets.dtype != torch.int64 or offsets.dim() != 1:
        got = (f"{offsets.dtype} of shape {tuple(offsets.shape)}" if isinstance(offsets, Tensor)
               else type(offsets).__name__)
        raise ValueError(f"offsets: expected a 1-D int64 tensor (steps + 1,), got {got}")
    if offsets.numel() < 2 or int(offsets[-1]) != data.shape[0]:
        raise ValueError(f"offsets: expected at least 2 entries, the last equal to data's rows "
                         f"({data.shape[0]}), got {offsets.tolist()[-3:]} (last entries)")
    if not isinstance(h0, Tensor) or h0.dim() != 2:
        raise ValueError("h0: expected a 2-D tensor (batch, out)")
    sizes = check_weights(mode, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr,
                          data.shape[1], data.dtype)
    _check_states(mode, h0, c0, h0.shape[0], sizes, data.dtype)
    return sizes
