"""Gradient clipping, softmax cross-entropy and the optimizers, checked against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit import scratch


def random_grads(seed: int, scale: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"weight": scale * rng.standard_normal((4, 3)), "bias": scale * rng.standard_normal(4)}


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 1e3), max_norm=st.floats(0.01, 100.0))
def test_clip_grad_norm_caps_the_global_norm(seed, scale, max_norm):
    grads = random_grads(seed, scale)
    norm_before = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    clipped, reported = scratch.clip_grad_norm(grads, max_norm)
    assert reported == pytest.approx(norm_before, rel=1e-12)
    if norm_before > max_norm:
        assert scratch.global_norm(clipped) == pytest.approx(max_norm, rel=1e-12)
        for name, grad in grads.items():  # same direction, shorter
            np.testing.assert_allclose(clipped[name], grad * (max_norm / norm_before), rtol=1e-12)
    else:
        for name, grad in grads.items():
            np.testing.assert_array_equal(clipped[name], grad)


def test_clip_grad_norm_matches_torch_and_leaves_inputs_alone():
    grads = random_grads(0, 10.0)
    originals = {name: grad.copy() for name, grad in grads.items()}
    clipped, norm = scratch.clip_grad_norm(grads, 1.0)
    tensors = [torch.tensor(g) for g in grads.values()]
    for tensor in tensors:
        tensor.grad = tensor.clone()
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, 1.0)
    assert norm == pytest.approx(torch_norm.item(), rel=1e-12)
    for ours, tensor in zip(clipped.values(), tensors, strict=True):
        # torch divides by norm + 1e-6, so it clips to slightly under max_norm
        np.testing.assert_allclose(ours, tensor.grad.numpy(), rtol=1e-6)
    for name, grad in grads.items():
        np.testing.assert_array_equal(grad, originals[name])


def test_clip_grad_norm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0, got 0"):
        scratch.clip_grad_norm(random_grads(0, 1.0), 0.0)
    with pytest.raises(TypeError, match="max_norm must be a number, got str"):
        scratch.clip_grad_norm(random_grads(0, 1.0), "1")
    with pytest.raises(ValueError, match="non-finite global norm"):
        scratch.clip_grad_norm({"w": np.array([1.0, np.nan])}, 1.0)


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(0)
    logits = 5 * rng.standard_normal((6, 5))
    targets = np.array([0, 4, 2, 2, 1, 3])
    loss, grad = scratch.softmax_cross_entropy(logits, targets)
    torch_logits = torch.tensor(logits, requires_grad=True)
    torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.tensor(targets))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-13)
    np.testing.assert_allclose(grad, torch_logits.grad.numpy(), rtol=0, atol=1e-15)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    loss, grad = scratch.softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
    assert loss == pytest.approx(1000.0)
    np.testing.assert_allclose(grad, [[1.0, -1.0]])


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (np.array([0, 5]), "targets must be class ids in \\[0, 3\\), got values from 0 to 5"),
        (np.array([0.0, 1.0]), "targets must be integer class ids of shape \\(2,\\)"),
        (np.array([0]), "targets must be integer class ids of shape \\(2,\\)"),
    ],
)
def test_softmax_cross_entropy_rejects_bad_targets(targets, message):
    with pytest.raises(ValueError, match=message):
        scratch.softmax_cross_entropy(np.zeros((2, 3)), targets)


@pytest.mark.parametrize(
    ("ours", "theirs", "options"),
    [
        (scratch.Adagrad, torch.optim.Adagrad, {"lr": 0.1}),
        (scratch.Adam, torch.optim.Adam, {"lr": 0.01}),
        (scratch.Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6}),
    ],
)
def test_optimizer_matches_torch(ours, theirs, options):
    rng = np.random.default_rng(0)
    params = {"weight": rng.standard_normal((3, 2)), "bias": rng.standard_normal(3)}
    tensors = {name: torch.tensor(p.copy(), requires_grad=True) for name, p in params.items()}
    optimizer, torch_optimizer = ours(params, **options), theirs(tensors.values(), **options)
    for _ in range(5):
        grads = {name: rng.standard_normal(p.shape) for name, p in params.items()}
        optimizer.step(grads)
        for name, tensor in tensors.items():
            tensor.grad = torch.tensor(grads[name])
        torch_optimizer.step()
    for name, tensor in tensors.items():
        np.testing.assert_allclose(params[name], tensor.detach().numpy(), rtol=0, atol=1e-13)


def test_optimizer_rejects_mismatched_grads():
    optimizer = scratch.Adam({"weight": np.zeros(2)})
    with pytest.raises(ValueError, match="grads must have the same keys as params"):
        optimizer.step({"bias": np.zeros(2)})
    with pytest.raises(ValueError, match=r"grads\['weight'\] must have shape \(2,\), got \(3,\)"):
        optimizer.step({"weight": np.zeros(3)})
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got -1"):
        scratch.Adagrad({"weight": np.zeros(2)}, lr=-1)
