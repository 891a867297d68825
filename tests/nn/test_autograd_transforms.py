"""Second derivatives and torch.func transforms through rnnkit layers, against torch.nn (issue 12).

The native engine computes first derivatives in C++; ``create_graph=True`` and functorch must
still give torch's numbers (backend 'auto' and 'native': the engine path, not only the loop).
"""

from __future__ import annotations

import pytest
import torch
from tests.nn.helpers import KINDS, as_tuple, make_pair
from torch.func import functional_call, grad, jacrev, jvp, vmap
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.engine import differentiable

TOL = 1e-10  # float64 throughout
LENGTHS = [5, 2, 4]


def _output(layer, x, how):
    """The padded output of ``layer`` over ``x (5, 3, 3)``: whole, with ``lengths=``, or packed."""
    if how == "lengths":
        return layer(x, lengths=LENGTHS)[0]
    if how == "packed":
        packed = pack_padded_sequence(x, LENGTHS, enforce_sorted=False)
        return pad_packed_sequence(layer(packed)[0], total_length=x.shape[0])[0]
    return layer(x)[0]


def _hessian_vector_products(layer, x, how):
    """Gradients of ``<grad(loss), v>`` for a fixed ``v``: a second derivative per leaf."""
    x = x.clone().requires_grad_(True)
    leaves = [x, *(p for _, p in sorted(layer.named_parameters()))]
    loss = _output(layer, x, how).tanh().square().sum()
    first = torch.autograd.grad(loss, leaves, create_graph=True)
    generator = torch.Generator().manual_seed(7)
    inner = sum((g * torch.randn(g.shape, generator=generator, dtype=g.dtype)).sum()
                for g in first)
    return [g.detach() for g in first], torch.autograd.grad(inner, leaves)


@pytest.mark.parametrize("backend", ["auto", "native"])
@pytest.mark.parametrize("how", ["plain", "lengths", "packed"])
@pytest.mark.parametrize("kind", KINDS)
def test_second_derivatives_match_torch(kind, how, backend):
    reference, ours = make_pair(kind, 3, 4, backend=backend, num_layers=2, bidirectional=True)
    x = torch.randn(5, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # torch.nn has no lengths=: packing is its way to the same padded output.
    expected_first, expected = _hessian_vector_products(
        reference, x, "packed" if how == "lengths" else how)
    got_first, got = _hessian_vector_products(ours, x, how)
    for want, have in zip(expected_first + list(expected), got_first + list(got), strict=True):
        torch.testing.assert_close(have, want, atol=TOL, rtol=0)
    assert max(float(g.abs().max()) for g in got) > 1e-3  # not vacuously zero


def test_projected_lstm_second_derivatives_match_torch():
    reference, ours = make_pair("LSTM", 3, 4, backend="native", proj_size=2)
    x = torch.randn(4, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for want, have in zip(_hessian_vector_products(reference, x, "plain")[1],
                          _hessian_vector_products(ours, x, "plain")[1], strict=True):
        torch.testing.assert_close(have, want, atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradgradcheck_with_lengths(kind):
    _, ours = make_pair(kind, 2, 3, backend="native")
    x = torch.randn(3, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    weight = ours.weight_hh_l0

    def run(x, h0, weight_hh):
        with torch.nn.utils.stateless._reparametrize_module(ours, {"weight_hh_l0": weight_hh}):
            hx = (h0, torch.zeros_like(h0)) if kind == "LSTM" else h0
            output, state = ours(x, hx, lengths=[3, 1, 0])
        return output, as_tuple(state)[0]

    assert torch.autograd.gradgradcheck(run, (x, h0, weight))


def test_ordinary_backward_stays_native(monkeypatch):
    """create_graph=False never runs the torch-op recomputation (training keeps its speed)."""
    calls = []
    original = differentiable.recurrence
    monkeypatch.setattr(differentiable, "recurrence",
                        lambda *args: calls.append(1) or original(*args))
    _, ours = make_pair("GRU", 3, 4, backend="native")
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    ours(x)[0].sum().backward()
    assert calls == []
    first = torch.autograd.grad(ours(x)[0].square().sum(), x, create_graph=True)[0]
    assert calls == [1]
    first.sum().backward()


def _transform_pair(kind, backend="auto"):
    reference, ours = make_pair(kind, 3, 4, backend=backend, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    return reference, ours, x


@pytest.mark.parametrize("kind", KINDS)
def test_jacrev_grad_jvp_and_vectorized_jacobian_match_torch(kind):
    reference, ours, x = _transform_pair(kind)
    tangent = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(4))
    for layer_fn in (lambda layer: jacrev(lambda v: layer(v)[0]),
                     lambda layer: grad(lambda v: layer(v)[0].square().sum()),
                     lambda layer: (lambda v: jvp(lambda u: layer(u)[0], (v,), (tangent,))[1]),
                     lambda layer: (lambda v: torch.autograd.functional.jacobian(
                         lambda u: layer(u)[0], v, vectorize=True))):
        torch.testing.assert_close(layer_fn(ours)(x), layer_fn(reference)(x), atol=TOL, rtol=0)


@pytest.mark.parametrize("backend", ["auto", "native"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH"])
def test_vmap_of_grad_gives_per_sample_gradients(kind, backend):
    """vmap(grad(loss)) over samples (with per-sample lengths) equals a loop of backward()."""
    _, ours = make_pair(kind, 3, 4, backend=backend, bidirectional=True)
    params = {name: p.detach() for name, p in ours.named_parameters()}
    generator = torch.Generator().manual_seed(5)
    samples = torch.randn(4, 6, 3, dtype=torch.float64, generator=generator)  # (S, L, input)
    lengths = torch.tensor([[6], [2], [0], [4]])

    def loss(parameters, sample, length):
        output, state = functional_call(ours, parameters, (sample.unsqueeze(1),),
                                        {"lengths": length})
        return output.square().sum() + as_tuple(state)[0].sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))(params, samples, lengths)
    for index in range(len(samples)):
        ours.zero_grad()
        loss(dict(ours.named_parameters()), samples[index], lengths[index]).backward()
        for name, parameter in ours.named_parameters():
            torch.testing.assert_close(per_sample[name][index], parameter.grad, atol=TOL, rtol=0)


def test_batched_backward_matches_torch():
    """autograd.grad(is_grads_batched=True) (a vmap over backward) through the native engine."""
    reference, ours = make_pair("LSTM", 3, 4, backend="native")
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    cotangents = torch.randn(3, 5, 2, 4, dtype=torch.float64,
                             generator=torch.Generator().manual_seed(6))
    got = torch.autograd.grad(ours(x)[0], x, cotangents, is_grads_batched=True)[0]
    want = torch.autograd.grad(reference(x)[0], x, cotangents, is_grads_batched=True)[0]
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_vmap_over_step_in_inference_matches_a_batched_step(kind):
    # Under no_grad step() would take its native one-call path, which takes plain memory
    # only: inside a transform it must step aside for the traceable general path.
    _, layer = make_pair(kind, 3, 4, backend="native", num_layers=2)
    x = torch.randn(5, 3, dtype=torch.float64)
    with torch.no_grad():
        per_row = vmap(lambda row: layer.step(row.unsqueeze(0))[0].squeeze(0))(x)
        batched = layer.step(x)[0]
    torch.testing.assert_close(per_row, batched, rtol=1e-10, atol=1e-12)
