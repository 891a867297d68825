"""The NumPy reference against torch autograd: ``torch.nn`` and ``rnnkit.nn`` (every backend).

Weights are copied from the torch-side module into the scratch network through its
``state_dict``; forward outputs and every gradient (input, initial states, each parameter) must
agree within 1e-10 in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.scratch.scratch_cases import as_tuple

import rnnkit.nn
from rnnkit import scratch

TOLERANCE = 1e-10
NAMESPACES = (
    "torch.nn",
    "rnnkit.nn",
    "rnnkit.nn[torch]",
    "rnnkit.nn[python]",
    "rnnkit.nn[native]",
)
"""The torch side: ``torch.nn``, ``rnnkit.nn`` with its default backend, or a chosen backend."""

VARIANTS = {
    # name: (class name, constructor options)
    "rnn_tanh": ("RNN", {}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", {"proj_size": 2}),
    "gru": ("GRU", {}),
}
STACKINGS = {
    "1_layer": {},
    "2_layers_bidirectional": {"num_layers": 2, "bidirectional": True},
    "no_bias": {"bias": False},
}


def torch_side_module(namespace: str, class_name: str, *args, **options) -> torch.nn.Module:
    if namespace == "torch.nn":
        return getattr(torch.nn, class_name)(*args, dtype=torch.float64, **options)
    backend = namespace.removeprefix("rnnkit.nn").strip("[]") or None
    if backend == "native" and rnnkit.nn.backend.native_engine() is None:
        pytest.skip("rnnkit.engine's compiled kernels are not available")
    cls = getattr(rnnkit.nn, class_name)
    return cls(*args, dtype=torch.float64, backend=backend, **options)


def scratch_copy(module: torch.nn.Module, class_name: str, **options) -> scratch.StackedRecurrent:
    net = getattr(scratch, class_name)(module.input_size, module.hidden_size, **options)
    net.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    return net


def pack_state(parts: list, is_lstm: bool):
    return tuple(parts) if is_lstm else parts[0]


def scratch_results(net, inputs, state, weights, lengths):
    """Outputs ``[output, h_n(, c_n)]`` and gradients by name from the hand-written BPTT."""
    output, final, cache = net.forward(inputs, pack_state(state, net.is_lstm), lengths=lengths)
    grad_inputs, grad_state, grads = net.backward(
        cache, weights[0], pack_state(weights[1:], net.is_lstm)
    )
    named = {"input": grad_inputs} | dict(zip(["h0", "c0"], as_tuple(grad_state), strict=False))
    return [output, *as_tuple(final)], named | grads


def run_module(module, inputs, hx, lengths):
    """``module(inputs, hx)``, for a padded batch through ``lengths=`` or a PackedSequence."""
    if lengths is None:
        return module(inputs, hx)
    if isinstance(module, rnnkit.nn.RecurrentBase):
        return module(inputs, hx, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(inputs, lengths, enforce_sorted=False)
    output, final = module(packed, hx)
    output, _ = torch.nn.utils.rnn.pad_packed_sequence(output, total_length=inputs.shape[0])
    return output, final


def torch_results(module, inputs, state, weights, lengths):
    """Outputs and gradients by name of the loss ``sum(weights * outputs)`` by torch autograd."""
    leaves = {"input": torch.tensor(inputs, requires_grad=True)}
    state_names = ["h0", "c0"][: len(state)]
    state_leaves = [torch.tensor(part, requires_grad=True) for part in state]
    leaves |= dict(zip(state_names, state_leaves, strict=True))
    leaves |= dict(module.named_parameters())
    hx = pack_state(state_leaves, len(state) == 2)
    output, final = run_module(module, leaves["input"], hx, lengths)
    parts = [output, *as_tuple(final)]
    loss = sum((torch.tensor(w) * part).sum() for w, part in zip(weights, parts, strict=True))
    grads = torch.autograd.grad(loss, list(leaves.values()))
    named = {name: grad.numpy() for name, grad in zip(leaves, grads, strict=True)}
    return [part.detach().numpy() for part in parts], named


def compare(
    namespace, class_name, options, seq, batch, input_size, hidden_size, seed, lengths=None
):
    """Run both sides on the same data; assert outputs and all gradients agree."""
    torch.manual_seed(seed)
    module = torch_side_module(namespace, class_name, input_size, hidden_size, **options)
    net = scratch_copy(module, class_name, **options)
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((seq, batch, input_size))
    zero_output, zero_state, _ = net.forward(inputs)  # only for the shapes
    state = [rng.standard_normal(part.shape) for part in as_tuple(zero_state)]
    weights = [rng.standard_normal(p.shape) for p in [zero_output, *as_tuple(zero_state)]]

    ours, our_grads = scratch_results(net, inputs, state, weights, lengths)
    theirs, their_grads = torch_results(module, inputs, state, weights, lengths)
    for index, (mine, expected) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(mine, expected, rtol=0, atol=TOLERANCE, err_msg=f"out {index}")
    assert our_grads.keys() == their_grads.keys()
    for name, expected in their_grads.items():
        np.testing.assert_allclose(
            our_grads[name], expected, rtol=0, atol=TOLERANCE, err_msg=f"gradient of {name}"
        )


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("stacking", sorted(STACKINGS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_matches_torch_autograd(namespace, variant, stacking):
    class_name, options = VARIANTS[variant]
    compare(namespace, class_name, options | STACKINGS[stacking], 5, 3, 4, 6, seed=0)


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_padded_batches_match_torch(namespace, variant):
    """Rows of different lengths: ``lengths=`` for rnnkit.nn, a PackedSequence for torch.nn."""
    class_name, options = VARIANTS[variant]
    options = options | {"num_layers": 2, "bidirectional": True}
    # torch.nn cannot pack a row of length 0; rnnkit.nn's contract covers it
    lengths = [5, 2, 3, 1] if namespace == "torch.nn" else [5, 0, 3, 1]
    compare(namespace, class_name, options, 5, 4, 3, 5, seed=1, lengths=lengths)


def test_full_lengths_give_exactly_the_unpadded_result():
    rng = np.random.default_rng(0)
    net = scratch.LSTM(3, 4, 2, bidirectional=True, proj_size=2, rng=rng)
    inputs = rng.standard_normal((5, 3, 3))
    dense_output, (dense_h, dense_c), dense_cache = net.forward(inputs)
    output, (h, c), cache = net.forward(inputs, lengths=[5, 5, 5])
    np.testing.assert_allclose(output, dense_output, rtol=0, atol=1e-15)
    np.testing.assert_allclose(h, dense_h, rtol=0, atol=1e-15)
    np.testing.assert_allclose(c, dense_c, rtol=0, atol=1e-15)
    grad_output = rng.standard_normal(output.shape)
    _, _, dense_grads = net.backward(dense_cache, grad_output)
    _, _, grads = net.backward(cache, grad_output)
    for name, grad in dense_grads.items():
        np.testing.assert_allclose(grads[name], grad, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ([5, 6], "lengths must be in \\[0, seq=5\\], got values from 5 to 6"),
        ([5], "lengths must be 2"),
    ],
)
def test_bad_lengths_raise(lengths, message):
    with pytest.raises(ValueError, match=message):
        scratch.GRU(3, 4).forward(np.zeros((5, 2, 3)), lengths=lengths)


@settings(max_examples=15, deadline=None)
@given(
    variant=st.sampled_from(sorted(VARIANTS)),
    seq=st.integers(1, 6),
    batch=st.integers(1, 4),
    input_size=st.integers(1, 5),
    hidden_size=st.integers(3, 6),
    num_layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_torch_nn_for_any_sizes(
    variant, seq, batch, input_size, hidden_size, num_layers, bidirectional, seed
):
    class_name, options = VARIANTS[variant]
    options = options | {"num_layers": num_layers, "bidirectional": bidirectional}
    compare("torch.nn", class_name, options, seq, batch, input_size, hidden_size, seed)


def test_load_state_dict_rejects_mismatched_names():
    net = scratch.GRU(3, 4)
    with pytest.raises(ValueError, match="missing \\['bias_hh_l0'\\]"):
        net.load_state_dict({k: v for k, v in net.params.items() if k != "bias_hh_l0"})
