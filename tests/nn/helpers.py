"""Helpers shared by the layer tests: build a torch.nn / rnnkit.nn pair with equal weights."""

from __future__ import annotations

import torch

import rnnkit.nn as rnn

KINDS = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


def make_pair(kind: str, input_size: int, hidden_size: int, *, dtype=torch.float64, seed=0,
              backend="python", **options):
    """Return ``(torch_layer, rnnkit_layer)`` with identical parameters.

    rnnkit-only options (``recurrent_dropout``, ``zoneout``) go to the rnnkit layer alone.
    """
    extras = {key: options.pop(key) for key in ("recurrent_dropout", "zoneout") if key in options}
    cls_name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(kind, kind)
    if kind.startswith("RNN_"):
        options["nonlinearity"] = "tanh" if kind == "RNN_TANH" else "relu"
    torch.manual_seed(seed)
    reference = getattr(torch.nn, cls_name)(input_size, hidden_size, dtype=dtype, **options)
    ours = getattr(rnn, cls_name)(input_size, hidden_size, dtype=dtype, backend=backend, **options,
                                        **extras)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def outputs_and_grads(layer, x, hx, *, lengths=None, packed=False, batch_first=False):
    """Run ``layer`` and return its outputs, final states and gradients of a fixed loss.

    The loss weights every output element by a fixed pseudo-random factor, so each gradient
    entry is exercised. Gradients cover the input, every initial state and every parameter.
    """
    leaves = [x] + ([] if hx is None else list(as_tuple(hx)))
    for leaf in leaves:
        leaf.requires_grad_(True)
    if packed:
        sequence = torch.nn.utils.rnn.pack_padded_sequence(
            x, lengths, batch_first=batch_first, enforce_sorted=False)
        output, state = layer(sequence, hx)
        output, _ = torch.nn.utils.rnn.pad_packed_sequence(
            output, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    elif lengths is not None:
        output, state = layer(x, hx, lengths=lengths)
    else:
        output, state = layer(x, hx)
    generator = torch.Generator().manual_seed(1234)
    loss = (output * torch.randn(output.shape, generator=generator, dtype=output.dtype)).sum()
    for tensor in as_tuple(state):
        loss = loss + (tensor * torch.randn(tensor.shape, generator=generator,
                                            dtype=tensor.dtype)).sum()
    params = [p for _, p in sorted(layer.named_parameters())]
    grads = torch.autograd.grad(loss, leaves + params, allow_unused=True)
    return [output, *as_tuple(state)], list(grads)


def assert_close_lists(actual, expected, *, rtol, atol, what):
    assert len(actual) == len(expected), what
    for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
        if e is None:
            assert a is None or not a.abs().any(), f"{what}[{index}]"
            continue
        torch.testing.assert_close(a, e, rtol=rtol, atol=atol,
                                   msg=lambda m, i=index: f"{what}[{i}]: {m}")


def available_backends():
    """Backends to test: always torch and python, native when the engine is compiled."""
    backends = ["torch", "python"]
    if rnn.backend.native_engine() is not None:
        backends.append("native")
    return backends
