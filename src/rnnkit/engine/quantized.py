"""int8 dynamically quantised recurrences (inference only) over the native int8 kernels.

Weights are quantised once, symmetric int8 per output row (``scale = max|w_row| / 127``),
and packed for the CPU's int8 dot products (AVX-512 VNNI ``vpdpbusd`` where the CPU has it,
AVX2 otherwise, portable C++ elsewhere; see ``csrc/int8.h``). Activations (the layer input
for the input projection, the state for the recurrent product, ``o * tanh(c)`` for an LSTM
projection) are quantised per row and step to uint8 with a zero point, dynamically. Gate
arithmetic stays float32. Integer sums are exact, so the result does not depend on the ISA
or on the thread count.

Example::

    from rnnkit.engine import quantized
    ih, hh = quantized.pack(w_ih, gates=4), quantized.pack(w_hh, gates=4)
    y, h_n, c_n = quantized.recurrence("LSTM", x, h0, c0, ih, hh, None, bias, None)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import torch
from torch import Tensor

from rnnkit.engine import checks, workspace
from rnnkit.engine._loader import require_native
from rnnkit.engine.stream import source_marks
from rnnkit.engine.threads import choose_threads

ROWS = 16  # output rows per packed block
GROUP = 4  # inputs per 4-byte group of one row



def native() -> ModuleType:
    """The int8 entry points of the compiled extension: ``_native.int8``.

    They live in ``_native`` itself, so they share its thread pool and ISA choice.
    """
    return workspace.native().int8


def kernel() -> str:
    """The int8 kernels the engine's current ISA runs: ``'vnni'``, ``'avx2'`` or ``'generic'``."""
    return native().kernel(require_native().isa())


@dataclass(frozen=True)
class PackedMatrix:
    """A weight ``(rows, inputs)`` quantised per row and packed for the int8 kernels.

    ``weight (Rp/16, Kp/4, 16, 4)`` int8, ``scale (Rp,)`` float32, ``rowsum (Rp,)`` int32, where
    each of the ``gates`` row segments is padded to a multiple of 16 rows (``Rp``) and the inputs
    to a multiple of 4 (``Kp``); padding is zero.
    """

    weight: Tensor
    scale: Tensor
    rowsum: Tensor
    rows: int
    inputs: int
    gates: int


def _round_up(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """``(q (R, K) int8, scale (R,) float32)`` with ``weight ~= scale[:, None] * q``.

    Symmetric per row: ``scale = max|row| / 127`` (1 for an all-zero row), ``q`` in [-127, 127].
    """
    w = weight.detach().to(torch.float32)
    scale = w.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def pack(weight: Tensor, gates: int = 1) -> PackedMatrix:
    """Quantise ``weight (gates * H, K)`` (torch's layout) and pack it (:class:`PackedMatrix`)."""
    if not isinstance(weight, Tensor) or weight.dim() != 2 or weight.shape[0] % gates:
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"weight: expected a 2-D tensor with a multiple of {gates} rows, "
                         f"got {shape}")
    if not torch.isfinite(weight).all():
        raise ValueError("weight: expected finite values, got NaN or infinity")
    rows, inputs = weight.shape
    q, scale = quantize_rows(weight)
    per_gate, kp = rows // gates, _round_up(inputs, GROUP)
    padded = _round_up(per_gate, ROWS)
    q_full = torch.zeros(gates, padded, kp, dtype=torch.int8)
    q_full[:, :per_gate, :inputs] = q.view(gates, per_gate, inputs)
    s_full = torch.ones(gates, padded)
    s_full[:, :per_gate] = scale.view(gates, per_gate)
    rp = gates * padded
    blocks = q_full.view(rp // ROWS, ROWS, kp // GROUP, GROUP).permute(0, 2, 1, 3).contiguous()
    rowsum = q_full.view(rp, kp).sum(dim=1, dtype=torch.int32)
    return PackedMatrix(blocks, s_full.view(rp).contiguous(), rowsum, rows, inputs, gates)


def _threads(mode: str, batch: int, hidden: int, out_size: int) -> int:
    # An int8 multiply-add costs about a quarter of a float one, so a thread needs ~4x the
    # multiply-adds of the float kernels to pay for its barriers. The int8 kernels split
    # units only (no whole-row split).
    return choose_threads(mode, max(1, batch // 4), hidden, out_size, whole_rows=False)


def linear(x: Tensor, weight: PackedMatrix, bias: Tensor | None = None) -> Tensor:
    """``x (M, K) -> (M, R)``: ``x W^T + bias`` with ``x`` quantised per row (uint8)."""
    module = native()
    x = x.contiguous()
    y = x.new_empty(x.shape[0], weight.rows)
    module.linear(isa=require_native().isa(), threads=1, x=x, w=weight.weight,
                  scale=weight.scale, rowsum=weight.rowsum,
                  bias=None if bias is None else bias.contiguous(), y=y)
    return y


def recurrence(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, ih: PackedMatrix,
               hh: PackedMatrix, hr: PackedMatrix | None, bias: Tensor, b_hn: Tensor | None,
               lengths: Tensor | None = None, reverse: bool = False,
               threads: int | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer in one direction over a sequence, int8 products and float32 gates.

    - ``mode``: ``'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU'``; ``x (seq, batch, input)`` float32;
      ``h0 (batch, out)``; ``c0 (batch, hidden)`` for LSTM else ``None``.
    - ``ih``/``hh``/``hr``: :func:`pack` of ``weight_ih``, ``weight_hh`` (``gates=G``) and
      ``weight_hr`` (or ``None``); ``bias (G*H,)`` the summed gate biases (GRU's n gate: ``b_in``
      only) and ``b_hn (H,)`` for GRU, as ``rnnkit.engine.ops._gate_bias`` builds them.
    - ``lengths``: ``None`` or int64 ``(batch,)``; padded steps output zero and keep the state.
    - Returns ``(output (seq, batch, out), h_n (batch, out), c_n (batch, hidden) or None)``.
    """
    seq_len, batch, _ = x.shape
    hidden = hh.rows // hh.gates
    out_size = h0.shape[-1]
    if threads is None:
        threads = _threads(mode, batch, hidden, out_size)
    y = x.new_empty(seq_len, batch, out_size)
    h_n = x.new_empty(batch, out_size)
    c_n = x.new_empty(batch, hidden) if mode == "LSTM" else None
    native().layer(
        mode=checks.MODE_IDS[mode], reverse=bool(reverse), threads=int(threads),
        isa=require_native().isa(), hidden=hidden, x=x.contiguous(), h0=h0.contiguous(),
        c0=None if c0 is None else c0.contiguous(), w_ih=ih.weight, s_ih=ih.scale,
        r_ih=ih.rowsum, w_hh=hh.weight, s_hh=hh.scale, r_hh=hh.rowsum,
        w_hr=None if hr is None else hr.weight, s_hr=None if hr is None else hr.scale,
        r_hr=None if hr is None else hr.rowsum, bias=bias.contiguous(),
        b_hn=None if b_hn is None else b_hn.contiguous(), lengths=lengths, y=y, h_n=h_n,
        c_n=c_n)
    return y, h_n, c_n


# int8 multiply-adds per layer of a streaming step (weight bytes x batch rows) before a second
# thread pays off: at batch 1 the weight bytes of the fp32 threshold
# (rnnkit.engine.stream.MIN_WEIGHTS_FOR_THREADS floats). Below it a step is a few microseconds
# and the barrier per layer costs more than it saves (LSTM H=64: 2 threads 189 µs against 6.7
# µs for 1 on a loaded machine, bench/streaming.py).
MIN_STREAM_BYTES_FOR_THREADS = 256 * 1024


def _stream_threads(mode: str, batch: int, input_size: int, hidden: int, out_size: int) -> int:
    work = checks.GATES[mode] * hidden * (input_size + out_size) * batch
    return torch.get_num_threads() if work >= MIN_STREAM_BYTES_FOR_THREADS else 1


class StaleSourcesError(RuntimeError):
    """A float weight the packed int8 weights were made from changed after packing."""


#: One layer's packed weights: ``(ih, hh, hr or None, bias (G*H,), b_hn (H,) or None)``,
#: as :func:`recurrence` takes them.
PackedLayer = tuple[PackedMatrix, PackedMatrix, "PackedMatrix | None", Tensor, "Tensor | None"]


class Int8StreamStep:
    """One time step of stacked unidirectional int8 layers, one native call (streaming).

    - ``mode``: ``'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU'``; ``layers``: per layer
      :data:`PackedLayer` (as :func:`recurrence` takes them); ``sources``: the float tensors
      they were packed from, whose data pointers and version counters are recorded now;
      ``batch``: the batch the plan will serve (sets the thread count unless ``threads``).
    - :meth:`run_into` ``(x (batch, input), h (layers, batch, out), c (layers, batch, hidden)
      or None, h_n, c_n)`` writes the new states and returns ``y (batch, out)``, a new tensor.
      (The plan keeps its last two outputs, since a loop ``y = plan(...)`` still holds the
      last one, and writes the next one into one that nothing else can observe: no other
      reference, weak reference, view or shared storage, no attribute, in-place change or
      ``requires_grad``; the caller cannot tell it from a new one.)

    A step equals the same step of :func:`recurrence` exactly (the same kernel on a length-1
    sequence). If a source moved (replaced: its data pointer; changed in place through the
    tensor itself, as an optimizer step does: its version counter), :meth:`run_into` raises
    :class:`StaleSourcesError` instead of running stale weights; repack and build a new plan.
    Not detectable: writes through ``tensor.data`` or another tensor sharing the storage
    (they bump no counter of the source).
    """

    StaleWeights = StaleSourcesError

    def __init__(self, mode: str, layers: list[PackedLayer], sources: list[Tensor],
                 batch: int = 1, threads: int | None = None) -> None:
        checks.check_mode(mode)
        if not layers:
            raise ValueError("layers: expected at least one layer, got none")
        ih, hh, hr = layers[0][0], layers[0][1], layers[0][2]
        self.mode, self.layers = mode, len(layers)
        self.hidden, self.input_size = hh.rows // hh.gates, ih.inputs
        self.out_size = hh.inputs
        self.dtype = torch.float32
        if threads is None:
            threads = _stream_threads(mode, batch, self.input_size, self.hidden, self.out_size)
        packed = []
        for ih, hh, hr, bias, b_hn in layers:
            packed += [ih.weight, ih.scale, ih.rowsum, hh.weight, hh.scale, hh.rowsum,
                       *((None,) * 3 if hr is None else (hr.weight, hr.scale, hr.rowsum)),
                       bias.contiguous(), None if b_hn is None else b_hn.contiguous()]
        # The plan as a tuple (what the native side is built from; bench/streaming_ab.py
        # hands it to older builds, whose int8.stream took it on every call).
        self._plan = (require_native().isa(), checks.MODE_IDS[mode], self.layers,
                      self.input_size, self.hidden, self.out_size, int(threads), tuple(packed),
                      tuple(sources), source_marks(sources))
        #: ``native(x, h, c, h_n, c_n)``: :meth:`run_into` without its Python frame, returning
        #: ``False`` instead of raising when a source changed. It checked the packed tensors
        #: once and runs on its own copies of them, so later changes to ``layers`` (resized,
        #: overwritten) neither reach it nor need checking on every step.
        self.native = native().stream_plan(self._plan)

    def run_into(self, x: Tensor, h: Tensor, c: Tensor | None, h_n: Tensor,
                 c_n: Tensor | None) -> Tensor:
        """New states into ``h_n``/``c_n``; returns the last layer's output ``(batch, out)``.

        Raises :class:`StaleSourcesError` if a source weight changed since packing."""
        y = self.native(x, h, c, h_n, c_n)
        if y is False:
            raise StaleSourcesError("Int8StreamStep: a float weight changed after packing; "
                                    "repack and build a new plan")
        return y
