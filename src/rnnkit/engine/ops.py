"""Differentiable recurrences over the native kernels.

Only the sequential part runs in C++: the weight gradients (sums over time) and, mostly,
the input projection ``x W_ih^T`` for all steps are single large GEMMs done by torch. The
C++ loop keeps the recurrent weights hot in cache and does one product and the gate
arithmetic per step (see ``csrc/kernels_impl.h``); when both weights fit a core's cache it
also projects each step's input itself (:func:`_projects_in_kernel`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.engine import checks, differentiable, gemm, workspace
from rnnkit.engine._loader import require_native
from rnnkit.engine.stream import StreamStep
from rnnkit.engine.threads import choose_threads, pipelines

DOT_PRODUCT_MAX_ROWS = 2
_PLAIN = (Tensor, torch.nn.Parameter)
# Below this share of valid (unpadded) positions the input projection is done row by row
# over each row's valid steps instead of over the padded block (bench/variable_lengths.py).
ROW_PROJECTION_MAX_FILL = 0.8
# When the forward kernel projects the input itself (see _projects_in_kernel): rows per
# step, packed weight bytes kept in one core's L2, rows per step beyond that.
FUSED_PROJECTION_MIN_BATCH = 16
FUSED_PROJECTION_L2_BYTES = 1 << 20
FUSED_PROJECTION_WIDE_BATCH = 64
# Inference batches below this run as one native call projecting every step first
# (see _projects_first); the in-kernel per-step projection starts at FUSED_PROJECTION_MIN_BATCH.
PROJECT_FIRST_MAX_BATCH = 16


@dataclass(frozen=True)
class _Plan:
    """Everything about one call that is not a differentiable tensor."""

    mode: str
    hidden: int
    out_size: int
    lengths: Tensor | None
    reverse: bool
    threads: int
    # (steps + 1,) int64 or None: the packed layout (see packed_recurrence), where x, y and
    # the saved tensors are (rows, width) with step t's rows at [offsets[t], offsets[t+1]).
    offsets: Tensor | None = None


def _contiguous(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.contiguous()


def _run_forward(plan: _Plan, xg, bias, h0, c0, w_hh, b_hn, w_hr, save: bool,
                 inputs: tuple[Tensor, Tensor] | None = None):
    """Run the forward kernel; returns ``(y, h_n, c_n, saved)``, ``saved`` for backward.

    ``inputs``: ``(x, w_ih)`` contiguous, with ``xg`` None: the kernel projects each step
    itself (see :func:`_projects_in_kernel`)."""
    hidden, out_size = plan.hidden, plan.out_size
    batch = h0.shape[0]
    is_lstm = plan.mode == "LSTM"
    width = w_hh.shape[0]
    x, w_ih = (None, None) if inputs is None else inputs
    lead = (xg if x is None else x).shape[:-1]  # (seq, batch) padded, (rows,) packed
    # Saved tensors, or one step's scratch without save.
    saved_lead = lead if save else ((batch,) if plan.offsets is not None else (1, batch))
    new = h0.new_empty
    y = new(*lead, out_size)
    h_n = new(batch, out_size)
    c_n = new(batch, hidden) if is_lstm else None
    # Saved for backward. With lengths the kernel skips finished rows, leaving their entries
    # unwritten: zero them so no uninitialised memory is ever handed out (custom-op outputs).
    # The packed layout stores active rows only, and the kernel writes each of them.
    # They live until backward and have the same sizes every training step: on the workspace
    # cache (see rnnkit.engine.workspace), not fresh pages each call.
    fill = workspace.zeros if plan.lengths is not None else workspace.empty

    def saved(*shape):
        return fill(shape, h0)

    gates = saved(*saved_lead, width)
    aux = saved(*saved_lead, hidden) if plan.mode in ("LSTM", "GRU") else None
    m = saved(*saved_lead, hidden) if w_hr is not None else None
    work = new(2 * batch * out_size + batch * hidden)
    # The kernel packs the weights into column panels once per call (amortised over
    # seq * batch rows); one step of a tiny batch (streaming) uses dot products instead.
    pack = lead.numel() > DOT_PRODUCT_MAX_ROWS
    require_native().forward(
        mode=checks.MODE_IDS[plan.mode], reverse=plan.reverse, save=save, threads=plan.threads,
        pack=pack, xg=xg, bias=bias, h0=h0, c0=c0, w_hh=w_hh, b_hn=b_hn, w_hr=w_hr,
        lengths=plan.lengths, y=y, h_n=h_n, c_n=c_n, gates=gates, aux=aux, m=m, work=work,
        offsets=plan.offsets, x=x, w_ih=w_ih)
    return y, h_n, c_n, (gates, aux, m)


def _recurrent_weight_grad(plan: _Plan, dgh: Tensor, y: Tensor, h0: Tensor) -> Tensor:
    """``(gates * hidden, out)``: sum over steps of ``dgh[t]^T h_prev[t]``.

    ``dgh`` is ``(seq, batch, gates * hidden)``, ``y`` ``(seq, batch, out)``, ``h0``
    ``(batch, out)``. Unless rows end at different steps of a reversed sequence, the states
    read are ``y`` shifted by one step with ``h0`` at the first step read, so the sum is a
    GEMM over the shifted views plus one batch-sized product: no copy of the whole output
    (padded steps have zero ``dgh``, so what they read does not matter).
    """
    if plan.offsets is not None:
        previous = _packed_previous_states(plan, y, h0)
        return gemm.matmul(dgh.t(), previous)
    if plan.reverse and plan.lengths is not None:
        previous = _previous_states(plan, y, h0)
        return gemm.matmul(dgh.reshape(-1, dgh.shape[2]).t(), previous.view(-1, plan.out_size))
    first, grads, states = ((dgh[-1], dgh[:-1], y[1:]) if plan.reverse
                            else (dgh[0], dgh[1:], y[:-1]))
    if grads.shape[0] == 0:
        return first.t() @ h0
    dw = gemm.matmul(grads.reshape(-1, dgh.shape[2]).t(), states.reshape(-1, plan.out_size))
    return dw.addmm_(first.t(), h0)


def _previous_states(plan: _Plan, y: Tensor, h0: Tensor) -> Tensor:
    """``(seq, batch, out)``: the state each step of a reversed sequence with lengths read,
    where the step is active."""
    previous = torch.cat([y[1:], h0.unsqueeze(0)])
    rows = torch.nonzero(plan.lengths > 0).flatten()
    previous[plan.lengths[rows] - 1, rows] = h0[rows]
    return previous


def _packed_previous_states(plan: _Plan, y: Tensor, h0: Tensor) -> Tensor:
    """``(rows, out)``: the state each row of a packed sequence read (``y (rows, out)``,
    ``h0 (batch, out)``): the row's previous step in the direction of time, or ``h0`` at its
    first step."""
    offsets = plan.offsets
    counts = offsets.diff()
    steps, rows = counts.numel(), y.shape[0]
    times = torch.repeat_interleave(torch.arange(steps), counts)
    within = torch.arange(rows) - offsets[times]  # the row's place in the batch
    if plan.reverse:
        later = (times + 1).clamp(max=steps - 1)
        started = (times + 1 < steps) & (within < counts[later])
        source = torch.where(started, offsets[later] + within, rows + within)
    else:
        earlier = (times - 1).clamp(min=0)
        source = torch.where(times > 0, offsets[earlier] + within, rows + within)
    return torch.cat([y, h0]).index_select(0, source)


def _gate_bias(mode, x, bias_ih, bias_hh, gate_width, hidden):
    """``(G*H,)`` bias the kernel adds to each gate pre-activation; GRU keeps ``b_hn`` apart.

    GRU's ``b_hn`` is multiplied by the reset gate, so it is returned separately (or None).
    Adding the bias in the kernel, not in the projection GEMM, saves a pass over (T, B, G*H).
    """
    if bias_ih is None:
        return x.new_zeros(gate_width), None
    if mode != "GRU":
        return bias_ih + bias_hh, None
    two = 2 * hidden
    if type(bias_ih) not in _PLAIN:  # fake or wrapped (tracing): no cached mask for it
        return (torch.cat([bias_ih[:two] + bias_hh[:two], bias_ih[two:]]),
                bias_hh[two:].contiguous())
    # Two ops instead of five (a B=1 call pays ~1-3 µs per op); where() selects, so b_in is
    # passed through exactly.
    return (torch.where(_reset_update_mask(hidden, bias_ih.device), bias_ih + bias_hh, bias_ih),
            bias_hh[two:].contiguous())


@functools.lru_cache(maxsize=64)
def _reset_update_mask(hidden: int, device: torch.device) -> Tensor:
    """``(3H,)`` bool, true on GRU's r and z gates (whose two biases are summed)."""
    mask = torch.ones(3 * hidden, dtype=torch.bool, device=device)
    mask[2 * hidden:] = False
    return mask


def _input_projection(x: Tensor, w_ih: Tensor, lengths: Tensor | None,
                      source_rows: list[int] | None = None) -> Tensor:
    """``(seq, batch, gates * hidden)``: ``x W_ih^T`` at every step the kernels will read.

    Without lengths (or when padding is a small share) one GEMM covers every position. With
    much padding each row's valid prefix gets its own product, written in place: the kernels
    never read a row's projections past its length, and torch's packed path, the peer here,
    projects only real tokens too (at batch 128 with review-like lengths, padding is ~80% of
    the block). Entries past a row's length are left unwritten.

    ``source_rows``: row ``r`` of the result projects row ``source_rows[r]`` of ``x`` (the
    longest-first order, read in place instead of gathering a sorted copy of ``x``).
    """
    if x.dim() == 2:  # the packed layout: every row is a real token
        return gemm.matmul(x, w_ih.t(), out=_projection_buffer(x, w_ih, (x.shape[0],)))
    seq_len, batch, input_size = x.shape
    if lengths is not None and batch > 1:
        valid_steps = lengths.tolist()
        if sum(valid_steps) < ROW_PROJECTION_MAX_FILL * seq_len * batch:
            xg = _projection_buffer(x, w_ih, (seq_len, batch))
            xg = x.new_empty(seq_len, batch, w_ih.shape[0]) if xg is None else xg
            w_t = w_ih.t()
            sources = range(batch) if source_rows is None else source_rows
            for row, (source, steps) in enumerate(zip(sources, valid_steps, strict=True)):
                if steps > 0:
                    torch.mm(x[:steps, source], w_t, out=xg[:steps, row])
            return xg
    if source_rows is not None:
        x = x[:, source_rows]
    rows = seq_len * batch
    out = _projection_buffer(x, w_ih, (rows,))
    return gemm.matmul(x.reshape(rows, input_size), w_ih.t(), out=out).view(seq_len, batch, -1)


def _projection_buffer(x: Tensor, w_ih: Tensor, lead: tuple[int, ...]) -> Tensor | None:
    """``(*lead, gates * hidden)`` for the input projection, on the workspace cache (see
    rnnkit.engine.workspace): the forward kernel reads it once and drops it. None where a
    tracer's or functorch's tensors, or autograd, must see the product."""
    return workspace.empty((*lead, w_ih.shape[0]), x) if gemm.plain(x, w_ih) else None


def _projects_in_kernel(plan: _Plan, x: Tensor, w_hh: Tensor,
                        source_rows: list[int] | None) -> bool:
    """Whether the forward kernel computes ``x_t W_ih^T`` itself, step by step on its packed
    tile, instead of reading one torch GEMM's ``(seq, batch, gates * hidden)`` result.

    Only the padded layout without lengths, and not GRU (the kernel keeps no n-gate input
    part). Every step then reads the packed ``W_ih`` beside ``W_hh``: that pays while both
    stay in a core's L2 (up to :data:`FUSED_PROJECTION_L2_BYTES`), or, up to twice that, once
    a step has enough rows to use each weight read from further out many times
    (:data:`FUSED_PROJECTION_WIDE_BATCH`). Measured, one thread, LSTM input = hidden
    (bench/results/lstm_inference.md): hidden 64-128 gain at batch 16-128, hidden 256 at batch
    128 but not 16-32 (2 MiB of weights), hidden 512 (8 MiB) nowhere.

    Those figures are against MKL's projection on the project's Xeon. Where the products run on
    the engine's tile instead (:func:`rnnkit.engine.gemm.route`, AMD CPUs with AVX-512), an
    LSTM projects in the kernel from batch 16 at any weight size: on a 2-core AMD EPYC (Zen 5),
    against the tile's separate projection, inference 1.06-1.67x and training 1.09-1.24x at
    hidden 256-512, batch 16-128 (``python bench/fused_projection_ab.py``).
    """
    if (plan.mode == "GRU" or plan.lengths is not None or plan.offsets is not None
            or source_rows is not None or x.dim() != 3):
        return False
    batch = x.shape[1]
    if plan.mode == "LSTM" and gemm.route() == "native":
        return batch >= FUSED_PROJECTION_MIN_BATCH
    weight_bytes = w_hh.shape[0] * (x.shape[2] + w_hh.shape[1]) * x.element_size()
    return batch >= FUSED_PROJECTION_MIN_BATCH and (
        weight_bytes <= FUSED_PROJECTION_L2_BYTES
        or (weight_bytes <= 2 * FUSED_PROJECTION_L2_BYTES
            and batch >= FUSED_PROJECTION_WIDE_BATCH))


def _projects_first(plan: _Plan, x: Tensor) -> bool:
    """Whether an inference call runs as one native ``infer`` call: the kernel projects every
    step's input on its packed tile first, then runs the recurrence, with the gate bias,
    outputs and scratch made in C.

    Padded layout without lengths, batch below :data:`PROJECT_FIRST_MAX_BATCH` (wider
    batches project inside each step or through torch's GEMM) and more rows than
    :data:`DOT_PRODUCT_MAX_ROWS` (one step of a tiny batch reads the weights unpacked). At
    batch 1 about half of a call was fixed cost outside the kernel (a dozen torch ops and
    allocations); one thread, T=100, against the torch-GEMM route: 1.20x (LSTM H=64),
    1.37x (GRU H=64), 1.08-1.24x (GRU H=128), 1.00-1.07x from H=256
    (``python bench/project_first_ab.py routes``).
    """
    return (plan.lengths is None and plan.offsets is None and x.dim() == 3
            and x.shape[1] < PROJECT_FIRST_MAX_BATCH
            and x.shape[0] * x.shape[1] > DOT_PRODUCT_MAX_ROWS)


def _infer(plan: _Plan, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, panels=None,
           layered: bool = False):
    """``(y (seq, batch, out), h_n (batch, out), c_n (batch, hidden) or None)`` from one native
    call (see :func:`_projects_first`). Every tensor but ``x`` must be contiguous; the
    boundary checks them all. A call on one thread may project on a second one meanwhile
    (:func:`rnnkit.engine.threads.pipelines`). ``panels``: see :func:`panel_buffer`;
    ``layered``: the states come as ``(1, batch, size)``."""
    threads, pipeline = plan.threads, False
    steps, batch, input_size = x.shape
    if threads == 1 and pipelines(plan.mode, steps, batch, plan.hidden, input_size):
        threads, pipeline = 2, True
    return require_native().infer(
        mode=checks.MODE_IDS[plan.mode], reverse=plan.reverse, threads=threads, x=x,
        h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, w_hr=w_hr, pipeline=pipeline,
        panels=panels, layered=layered)


def panel_buffer(mode: str, input_size: int, hidden: int, out_size: int,
                 dtype: torch.dtype) -> Tensor:
    """A buffer in which small-batch inference calls (:func:`dense_inference`'s one native
    call) keep one layer-direction's packed weights between calls, ``(elements,)`` of
    ``dtype``: about the size of its ``W_ih`` and ``W_hh`` (plus ``W_hr``) together.

    The kernel repacks into it only when the weights it was packed from changed: another
    data pointer, version counter (an optimizer step, ``load_state_dict``, any in-place op on
    the parameter) or sampled values (most writes through ``.data`` or NumPy, not every one),
    or another shape, dtype or instruction set. Otherwise the call skips packing (a copy of
    the weights per call: 3-40 µs at hidden 64-256). The bits are those of a call without it.
    """
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    elements = require_native().panels_size(checks.MODE_IDS[mode], input_size, hidden, out_size,
                                            out_size != hidden, dtype == torch.float64)
    # Zeroed, not empty: freed memory (a dropped buffer's) may still hold a sealed header.
    return torch.zeros(elements, dtype=dtype)


def _forward_all(plan: _Plan, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, save: bool,
                 source_rows: list[int] | None = None):
    """Input projection (see :func:`_input_projection`) then the native recurrence, or both
    in the kernel (:func:`_projects_in_kernel`)."""
    if _projects_in_kernel(plan, x, w_hh, source_rows):
        bias, _ = _gate_bias(plan.mode, x, b_ih, b_hh, w_hh.shape[0], plan.hidden)
        return _run_forward(plan, None, bias, h0, c0, w_hh, None, w_hr, save,
                            inputs=(x.contiguous(), w_ih.contiguous()))
    if not save and source_rows is None and _projects_first(plan, x):
        return (*_infer(plan, x, h0, c0, w_ih.contiguous(), w_hh, _contiguous(b_ih),
                        _contiguous(b_hh), w_hr), None)
    xg = _input_projection(x, w_ih, plan.lengths, source_rows)
    bias, b_hn = _gate_bias(plan.mode, x, b_ih, b_hh, xg.shape[-1], plan.hidden)
    return _run_forward(plan, xg, bias, h0, c0, w_hh, b_hn, w_hr, save)


class _Recurrence(torch.autograd.Function):
    """``(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr) -> (y, h_n[, c_n])`` as one autograd node.

    Backward runs BPTT in C++ for the gate gradients, then four large GEMMs for the
    gradients of the input and of the weights (sums over all steps at once).
    """

    @staticmethod
    def forward(ctx, plan: _Plan, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        y, h_n, c_n, (gates, aux, m) = _forward_all(plan, x, h0, c0, w_ih, w_hh, b_ih, b_hh,
                                                    w_hr, True)
        ctx.plan = plan
        # gradients()' order, then the biases (only the recomputation below reads them).
        ctx.save_for_backward(x, y, h0, c0, w_ih, w_hh, w_hr, gates, aux, m, b_ih, b_hh)
        return (y, h_n, c_n) if c_n is not None else (y, h_n)

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n=None):
        # Grad mode is on inside backward only under create_graph=True. The native BPTT is
        # not differentiable, so then (and for a vmapped backward, whose batched gradients
        # the native boundary refuses) the gradients come from differentiating a torch-op
        # recomputation of the forward: the graph they carry is exact, so second derivatives
        # are right, at the cost of a slower backward only for those calls. Ordinary training
        # (create_graph=False) keeps the native kernels untouched.
        if torch.is_grad_enabled() or differentiable.any_wrapped((dy, dh_n, dc_n)):
            inputs = _saved_inputs(ctx.saved_tensors)
            return (None, *recomputed_gradients(ctx.plan, inputs, ctx.needs_input_grad[1:],
                                                (dy, dh_n, dc_n)))
        need = ctx.needs_input_grad
        grads = gradients(ctx.plan, *ctx.saved_tensors[:10], dy, dh_n, dc_n,
                          Needed(x=need[1], w_ih=need[4], w_hh=need[5], bias=need[6] or need[7],
                                 w_hr=need[8]))
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr = grads
        return (None, dx, dh0 if need[2] else None, dc0 if need[3] else None, dw_ih, dw_hh,
                db_ih, db_hh, dw_hr)


def _saved_inputs(saved) -> tuple:
    """``(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)`` from :class:`_Recurrence`'s saved tensors."""
    x, _, h0, c0, w_ih, w_hh, w_hr, _, _, _, b_ih, b_hh = saved
    return x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr


def recomputed_gradients(plan: _Plan, inputs: tuple, needed, grad_outputs: tuple) -> list:
    """Gradients of the recurrence by autograd through :mod:`rnnkit.engine.differentiable`.

    - ``inputs``: ``(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)`` as given to the forward (with
      their autograd history, so the gradients connect to the outer graph).
    - ``needed``: one flag per input; ``grad_outputs``: ``(dy, dh_n, dc_n|None)``.
    - Returns one gradient (or ``None``) per input, differentiable when grad mode is on.
    """
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        outputs = (differentiable.recurrence(plan.mode, *inputs, plan.lengths, plan.reverse)
                   if plan.offsets is None else _packed_reference(plan, inputs))
    pairs = [(out, grad) for out, grad in zip(outputs, grad_outputs, strict=True)
             if out is not None and grad is not None]
    wanted = [t for t, need in zip(inputs, needed, strict=True) if need and t is not None]
    if not wanted:
        return [None] * len(inputs)
    found = iter(torch.autograd.grad([out for out, _ in pairs], wanted,
                                     [grad for _, grad in pairs], create_graph=create_graph,
                                     allow_unused=True, materialize_grads=True))
    return [next(found) if need and t is not None else None
            for t, need in zip(inputs, needed, strict=True)]


def _packed_reference(plan: _Plan, inputs: tuple) -> tuple:
    """:func:`rnnkit.engine.differentiable.recurrence` over a packed sequence: its rows are
    scattered into a zero-padded block, run with per-row lengths and gathered back, all
    differentiable. Returns ``(y (rows, out), h_n, c_n|None)``."""
    x, h0 = inputs[0], inputs[1]
    batch, steps = h0.shape[0], plan.offsets.numel() - 1
    places = _padded_places(plan.offsets, batch)
    padded = x.new_zeros(steps * batch, x.shape[1]).index_copy(0, places, x)
    counts = plan.offsets.diff()
    lengths = (counts.unsqueeze(0) > torch.arange(batch).unsqueeze(1)).sum(1)
    y, h_n, c_n = differentiable.recurrence(plan.mode, padded.view(steps, batch, -1),
                                            *inputs[1:], lengths, plan.reverse)
    return y.reshape(steps * batch, -1).index_select(0, places), h_n, c_n


def _padded_places(offsets: Tensor, batch: int) -> Tensor:
    """``(rows,)``: where each row of a packed sequence sits in a ``(steps * batch)`` block."""
    counts = offsets.diff()
    times = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    return times * batch + torch.arange(times.numel()) - offsets[times]


@dataclass(frozen=True)
class Needed:
    """Which gradients the caller wants (the rest are returned as ``None``)."""

    x: bool = True
    w_ih: bool = True
    w_hh: bool = True
    bias: bool = True
    w_hr: bool = True


def gradients(plan: _Plan, x, y, h0, c0, w_ih, w_hh, w_hr, gates, aux, m, dy, dh_n, dc_n,
              need: Needed = Needed()):
    """BPTT in C++, then four large GEMMs for the input and weight gradients (sums over all
    steps at once). Returns ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr)``."""
    dgx, dgh, dh0, dc0, dhtot = _run_backward(plan, dy, dh_n, dc_n, y, h0, c0, w_hh, w_hr,
                                              gates, aux)
    input_size = x.shape[-1]
    rows = x.shape[:-1].numel()  # seq * batch, or the packed rows
    dgx2, dgh2 = dgx.view(rows, -1), dgh.view(rows, -1)  # (rows, gates * hidden)
    dx = dw_ih = dw_hh = db_ih = db_hh = dw_hr = None
    if need.x:
        dx = gemm.matmul(dgx2, w_ih).view(x.shape)
    if need.w_ih:
        dw_ih = gemm.matmul(dgx2.t(), x.reshape(rows, input_size))
    if need.w_hh:
        dw_hh = _recurrent_weight_grad(plan, dgh, y, h0)
    if need.bias:
        db_ih = dgx2.sum(0)
        # A separate tensor: the two .grad fields must not alias.
        db_hh = dgh2.sum(0) if dgh is not dgx else db_ih.clone()
    if need.w_hr and w_hr is not None:
        dw_hr = gemm.matmul(dhtot.view(rows, plan.out_size).t(), m.view(rows, plan.hidden))
    return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr


def _run_backward(plan: _Plan, dy, dh_n, dc_n, y, h0, c0, w_hh, w_hr, gates, aux):
    """BPTT kernel: gradients of the gate pre-activations, initial states and projected h."""
    lead = gates.shape[:-1]  # (seq, batch) padded, (rows,) packed
    batch = h0.shape[0]
    hidden, out_size = plan.hidden, plan.out_size
    new = gates.new_empty
    dgx = workspace.empty(gates.shape, gates)
    dgh = workspace.empty(gates.shape, gates) if plan.mode == "GRU" else dgx
    dh0 = new(batch, out_size)
    dc0 = new(batch, hidden) if plan.mode == "LSTM" else None
    dhtot = new(*lead, out_size) if w_hr is not None else None
    work = new(3 * batch * out_size + 2 * batch * hidden)
    dy, dh_n, dc_n = dy.contiguous(), dh_n.contiguous(), _contiguous(dc_n)
    require_native().backward(
        mode=checks.MODE_IDS[plan.mode], reverse=plan.reverse, threads=plan.threads, w_hh=w_hh,
        w_hr=w_hr, dy=dy, dh_n=dh_n, dc_n=dc_n, y=y, h0=h0, c0=c0, gates=gates, aux=aux,
        lengths=plan.lengths, dgx=dgx, dgh=dgh, dh0=dh0, dc0=dc0, dhtot=dhtot, work=work,
        offsets=plan.offsets)
    return dgx, dgh, dh0, dc0, dhtot


def recurrence(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, weight_ih: Tensor,
               weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None,
               weight_hr: Tensor | None, lengths: Tensor | None, reverse: bool):
    """One layer and one direction over a whole sequence, differentiable.

    - ``mode``: ``'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU'`` (torch's gate order and formulas).
    - ``x``: ``(seq, batch, input)``; ``h0``: ``(batch, out)``; ``c0``: ``(batch, hidden)`` for
      LSTM else ``None``; weights and biases shaped as in ``torch.nn`` (``out`` is
      ``proj_size`` when ``weight_hr`` is given, else ``hidden``).
    - ``lengths``: ``None`` or an int64 tensor ``(batch,)`` of valid steps per row.
    - ``reverse``: read each row from its last valid step back to step 0.
    - Returns ``(output (seq, batch, out), h_n (batch, out), c_n (batch, hidden) or None)``;
      ``output`` is zero at padded steps, rows of length 0 keep ``h0``/``c0``.
    """
    _, hidden, out_size = checks.check_recurrence_args(
        mode, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)
    seq_len, batch, _ = x.shape
    lengths = checks.check_lengths(lengths, batch, seq_len)
    if seq_len == 0 or batch == 0:
        raise ValueError(f"x: expected a non-empty sequence and batch, got shape {tuple(x.shape)}")
    order = _longest_first(lengths)
    tensors = (x, h0.contiguous(), _contiguous(c0), weight_ih, weight_hh.contiguous(), bias_ih,
               bias_hh, _contiguous(weight_hr))
    if order is not None:  # the kernels skip finished rows when they come last
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(batch)
        sorted_c0 = None if c0 is None else c0[order]
        if _plain_inference(tensors):  # x is projected in place, not copied in sorted order
            plan = _threaded_plan(mode, hidden, out_size, batch, lengths[order], reverse)
            y, h_n, c_n, _ = _forward_all(plan, x, h0[order], sorted_c0, *tensors[3:],
                                          save=False, source_rows=order.tolist())
        else:
            y, h_n, c_n = recurrence(mode, x[:, order], h0[order], sorted_c0, weight_ih,
                                     weight_hh, bias_ih, bias_hh, weight_hr, lengths[order],
                                     reverse)
        return y[:, inverse], h_n[inverse], None if c_n is None else c_n[inverse]
    if differentiable.functorch_active():  # functorch's wrappers are not plain memory
        return differentiable.recurrence(mode, *tensors, lengths, bool(reverse))
    if is_tracing(tensors):  # the op chooses the thread count when the graph runs
        return _traced_recurrence(_Plan(mode, hidden, out_size, lengths, bool(reverse), 0),
                                  *tensors)
    training = _needs_grad(tensors)
    # BPTT splits rows only without lengths (see choose_threads).
    plan = _threaded_plan(mode, hidden, out_size, batch, lengths, reverse,
                          whole_rows=lengths is None or not training)
    if training:
        result = _Recurrence.apply(plan, *tensors)
        return result if len(result) == 3 else (*result, None)
    y, h_n, c_n, _ = _forward_all(plan, *tensors, save=False)
    return y, h_n, c_n


def packed_offsets(batch_sizes: Tensor) -> Tensor:
    """``(steps + 1,)`` int64 from a ``PackedSequence``'s ``batch_sizes (steps,)``: step
    ``t``'s rows of ``PackedSequence.data`` are ``[offsets[t], offsets[t + 1])``."""
    sizes = batch_sizes.to("cpu", torch.int64)
    return torch.cat([sizes.new_zeros(1), sizes.cumsum(0)])


def packed_recurrence(mode: str, data: Tensor, offsets: Tensor, h0: Tensor, c0: Tensor | None,
                      weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None,
                      bias_hh: Tensor | None, weight_hr: Tensor | None, reverse: bool):
    """One layer and one direction over a packed sequence, differentiable, with no padding:
    one input-projection GEMM over the real tokens, and the output in the same layout.

    - ``data``: ``(rows, input)``, ``PackedSequence.data``: step ``t``'s rows are the first
      ``offsets[t+1] - offsets[t]`` rows of the batch (longest first), at
      ``[offsets[t], offsets[t+1])``.
    - ``offsets``: ``(steps + 1,)`` int64 from :func:`packed_offsets`; ``offsets[-1] == rows``.
    - ``h0``: ``(batch, out)``, ``c0``: ``(batch, hidden)`` for LSTM else ``None``, rows in the
      packed (longest-first) order; weights as :func:`recurrence`.
    - ``reverse``: read each row from its last step back to its first.
    - Returns ``(output (rows, out) in data's layout, h_n (batch, out), c_n (batch, hidden) or
      None)``: a row's state stops changing after its last step.

    Plain CPU tensors only: under tracing or ``torch.func`` use :func:`recurrence` with lengths.
    """
    _, hidden, out_size = checks.check_packed_args(mode, data, offsets, h0, c0, weight_ih,
                                                   weight_hh, bias_ih, bias_hh, weight_hr)
    tensors = (data, h0.contiguous(), _contiguous(c0), weight_ih, weight_hh.contiguous(),
               bias_ih, bias_hh, _contiguous(weight_hr))
    if differentiable.functorch_active() or is_tracing(tensors):
        raise ValueError("packed_recurrence: expected plain CPU tensors outside torch.compile "
                         "and torch.func transforms; use recurrence() with lengths there")
    training = _needs_grad(tensors)
    plan = _Plan(mode, hidden, out_size, None, bool(reverse),
                 choose_threads(mode, h0.shape[0], hidden, out_size, not training),
                 offsets.contiguous())
    if training:
        result = _Recurrence.apply(plan, *tensors)
        return result if len(result) == 3 else (*result, None)
    y, h_n, c_n, _ = _forward_all(plan, *tensors, save=False)
    return y, h_n, c_n


def inference_plan(mode: str, hidden: int, out_size: int, batch: int, reverse: bool) -> _Plan:
    """The plan :func:`dense_inference` runs: no lengths, threads for this batch and
    ``torch.get_num_threads()`` now (a caller keeping it must key it on both)."""
    return _threaded_plan(mode, hidden, out_size, batch, None, reverse)


def _threaded_plan(mode: str, hidden: int, out_size: int, batch: int, lengths: Tensor | None,
                   reverse: bool, whole_rows: bool = True) -> _Plan:
    """A plan with the thread count :func:`choose_threads` gives this batch now."""
    return _Plan(mode, hidden, out_size, lengths, bool(reverse),
                 choose_threads(mode, batch, hidden, out_size, whole_rows))


def dense_inference(plan: _Plan, x: Tensor, h0: Tensor, c0: Tensor | None, weight_ih: Tensor,
                    weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None,
                    weight_hr: Tensor | None, panels: Tensor | None = None,
                    layered: bool = False):
    """:func:`recurrence` without lengths or autograd, for a caller that validated the
    arguments once (``rnnkit.nn``'s inference fast path): no Python checks, no plan built.

    Shapes as :func:`recurrence`; every tensor but ``x`` must be contiguous (the weights and
    biases too, below :data:`PROJECT_FIRST_MAX_BATCH` rows). Every tensor the kernel reads
    is still checked by the native boundary
    (storage, shape, dtype, device, layout), which raises ``ValueError``/``TypeError``.
    Returns ``(output (seq, batch, out), h_n (batch, out), c_n (batch, hidden) or None)``.
    ``panels`` (:func:`panel_buffer`) keeps the packed weights between the calls that run as
    one native call (batch below :data:`PROJECT_FIRST_MAX_BATCH`); other calls ignore it.
    ``layered``: ``h_n`` and ``c_n`` come as ``(1, batch, size)``, a one-layer state.
    """
    if _projects_first(plan, x):  # the parameters of the caller's layer are contiguous
        return _infer(plan, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr,
                      panels, layered)
    y, h_n, c_n, _ = _forward_all(plan, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh,
                                  weight_hr, False)
    if layered:
        h_n, c_n = h_n.unsqueeze(0), (None if c_n is None else c_n.unsqueeze(0))
    return y, h_n, c_n


def _needs_grad(tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _plain_inference(tensors) -> bool:
    """No autograd, tracing or functorch: the kernels run directly on these tensors."""
    return not (_needs_grad(tensors) or differentiable.functorch_active()
                or is_tracing(tensors))


def _longest_first(lengths: Tensor | None) -> Tensor | None:
    """The row order that sorts ``lengths`` longest first, or ``None`` if already sorted.

    The kernels compute each step's products over the rows up to the last active one, so
    with rows longest first a finished row costs nothing, as in a packed sequence.
    """
    if lengths is None or lengths.numel() < 2 or bool((lengths[:-1] >= lengths[1:]).all()):
        return None
    return torch.argsort(lengths, descending=True, stable=True)


def is_tracing(tensors) -> bool:
    """True under ``torch.compile``/``torch.export`` or ``torch.jit.trace``, or when the input
    is not a plain tensor (fake, functional, or another subclass): the kernels then run
    through the custom op that ``rnnkit.engine.traced`` registers, whose fake implementation
    tracing can follow (``jit.trace`` records the op itself). (Only the input's type is read:
    every tracer wraps it; a foreign weight tensor reaching the kernels is refused by the
    native boundary's own checks.)"""
    return (type(tensors[0]) is not Tensor or torch.compiler.is_compiling()
            or torch.jit.is_tracing())


def _traced_recurrence(plan: _Plan, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
    """:func:`recurrence` through ``torch.ops.rnnkit.recurrence``: ``(y, h_n, c_n|None)``."""
    save = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr))
    y, h_n, c_n, *_ = torch.ops.rnnkit.recurrence(
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, plan.lengths, plan.mode, plan.reverse,
        plan.threads, save)
    return y, h_n, c_n if plan.mode == "LSTM" else None


def cell_step(mode: str, x_t: Tensor, h: Tensor, c: Tensor | None, weight_ih: Tensor,
              weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None,
              weight_hr: Tensor | None):
    """One time step: ``x_t (batch, input)``, ``h (batch, out)``, ``c (batch, hidden)`` or None.

    Returns ``(h_new, c_new or None)``. Differentiable when gradients are needed (through
    :func:`recurrence`); otherwise one native call does the whole step, for low streaming
    latency.
    """
    checks.check_step_input(x_t)
    tensors = (x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)
    needs_grad = torch.is_grad_enabled() and any(
        isinstance(t, Tensor) and t.requires_grad for t in tensors)
    if needs_grad or is_tracing(tensors):
        _, h_new, c_new = recurrence(mode, x_t.unsqueeze(0), h, c, weight_ih, weight_hh,
                                     bias_ih, bias_hh, weight_hr, None, False)
        return h_new, c_new
    weights = tuple(None if t is None else t.contiguous()
                    for t in (weight_ih, weight_hh, bias_ih, bias_hh, weight_hr))
    plan = StreamStep(mode, [weights])
    h_new, c_new = plan(x_t, h.unsqueeze(0).contiguous(),
                        None if c is None else c.unsqueeze(0).contiguous())
    return h_new[0], None if c_new is None else c_new[0]
