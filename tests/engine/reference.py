"""torch.nn references for one layer-direction, and comparison helpers for engine tests."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import engine

CLASSES = {"RNN_TANH": torch.nn.RNN, "RNN_RELU": torch.nn.RNN, "LSTM": torch.nn.LSTM,
           "GRU": torch.nn.GRU}
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def make_module(mode, input_size, hidden, *, bias=True, proj=0, dtype=torch.float64, seed=0):
    """A bidirectional single-layer torch.nn module (direction 0 forward, 1 reverse)."""
    torch.manual_seed(seed)
    options = {"bias": bias, "bidirectional": True, "dtype": dtype}
    if mode.startswith("RNN_"):
        options["nonlinearity"] = mode[4:].lower()
    if proj:
        options["proj_size"] = proj
    return CLASSES[mode](input_size, hidden, **options)


def direction_weights(module, reverse):
    """``(w_ih, w_hh, b_ih, b_hh, w_hr)`` of one direction of ``module``."""
    suffix = "_l0_reverse" if reverse else "_l0"
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    return [getattr(module, name + suffix, None) for name in names]


def torch_direction(module, mode, x, h0, c0, lengths, reverse):
    """``(output, h_n, c_n)`` of one direction by torch.nn, lengths through packing.

    The other direction gets zero initial states; its results are discarded. Rows of
    length 0 (which torch cannot pack) give zero output and keep their initial state.
    """
    seq_len, batch, _ = x.shape
    side = 1 if reverse else 0
    out_size = h0.shape[1]
    states = [torch.zeros_like(h0), torch.zeros_like(h0)]
    states[side] = h0
    h_full = torch.stack(states)
    c_full = None
    if c0 is not None:
        cells = [torch.zeros_like(c0), torch.zeros_like(c0)]
        cells[side] = c0
        c_full = torch.stack(cells)
    if lengths is None:
        output, state = module(x, (h_full, c_full) if mode == "LSTM" else h_full)
        h_n, c_n = _split_state(state, mode)
        half = output[:, :, side * out_size:(side + 1) * out_size]
        return half, h_n[side], None if c_n is None else c_n[side]
    kept = torch.nonzero(lengths > 0).flatten()
    output = x.new_zeros(seq_len, batch, out_size)
    h_out, c_out = h0, c0
    if len(kept):
        packed = pack_padded_sequence(x[:, kept], lengths[kept], enforce_sorted=False)
        sub = (h_full[:, kept], c_full[:, kept]) if mode == "LSTM" else h_full[:, kept]
        sub_out, state = module(packed, sub)
        sub_out, _ = pad_packed_sequence(sub_out, total_length=seq_len)
        h_n, c_n = _split_state(state, mode)
        output = output.index_copy(1, kept, sub_out[:, :, side * out_size:(side + 1) * out_size])
        h_out = h0.index_copy(0, kept, h_n[side])
        if c0 is not None:
            c_out = c0.index_copy(0, kept, c_n[side])
    return output, h_out, c_out


def _split_state(state, mode):
    return state if mode == "LSTM" else (state, None)


def engine_direction(module, mode, x, h0, c0, lengths, reverse):
    w_ih, w_hh, b_ih, b_hh, w_hr = direction_weights(module, reverse)
    return engine.recurrence(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse)


def results_and_grads(run, module, mode, x, h0, c0, lengths, reverse):
    """Outputs of ``run`` and the gradients of a fixed random loss over all of them."""
    inputs = [t for t in (x, h0, c0) if t is not None]
    for t in inputs:
        t.requires_grad_(True)
    weights = [w for w in direction_weights(module, reverse) if w is not None]
    results = [r for r in run(module, mode, x, h0, c0, lengths, reverse) if r is not None]
    generator = torch.Generator().manual_seed(99)
    loss = sum((r * torch.randn(r.shape, generator=generator, dtype=r.dtype)).sum()
               for r in results)
    leaves = inputs + weights
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    # Unused leaves (every row of length 0) have zero gradient.
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves, strict=True)]
    return results, grads


def assert_close(actual, expected, dtype, what):
    """Max abs difference within the dtype's tolerance relative to the reference's scale."""
    actual, expected = actual.detach(), expected.detach()
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    error = float((actual - expected).abs().max()) if expected.numel() else 0.0
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert error <= TOLERANCE[dtype] * scale, f"{what}: max error {error:.3g} (scale {scale:.3g})"


def compare(mode, *, seq_len, batch, input_size, hidden, bias=True, proj=0, lengths=None,
            reverse=False, dtype=torch.float64, seed=0, make_x=None):
    """Engine vs torch.nn for one configuration: outputs, states and every gradient."""
    module = make_module(mode, input_size, hidden, bias=bias, proj=proj, dtype=dtype, seed=seed)
    out_size = proj or hidden
    generator = torch.Generator().manual_seed(seed + 1)

    def fresh():
        x = (make_x(generator) if make_x else
             torch.randn(seq_len, batch, input_size, generator=generator, dtype=dtype))
        h0 = torch.randn(batch, out_size, generator=generator, dtype=dtype)
        c0 = None
        if mode == "LSTM":
            c0 = torch.randn(batch, hidden, generator=generator, dtype=dtype)
        return x, h0, c0

    state = generator.get_state()
    expected, expected_grads = results_and_grads(torch_direction, module, mode, *fresh(),
                                                 lengths, reverse)
    generator.set_state(state)
    actual, actual_grads = results_and_grads(engine_direction, module, mode, *fresh(),
                                             lengths, reverse)
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert_close(a, e, dtype, f"result {index}")
    for index, (a, e) in enumerate(zip(actual_grads, expected_grads, strict=True)):
        assert_close(a, e, dtype, f"gradient {index}")
