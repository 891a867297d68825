"""The hand-written BPTT agrees with central finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest
from tests.scratch.scratch_cases import LAYERS, LENGTHS, STACKS, as_tuple, make_problem

from rnnkit import scratch
from rnnkit.scratch.gradcheck import numerical_gradient, relative_error

TOLERANCE = 1e-7  # central differences with eps=1e-6 reach ~1e-9 on these sizes


CASES = [(name, False) for name in sorted(LAYERS) + sorted(STACKS)]
CASES += [(name, True) for name in sorted(STACKS)]


@pytest.mark.parametrize(("name", "padded"), CASES)
def test_every_gradient_matches_finite_differences(name, padded):
    rng = np.random.default_rng(7)
    net = {**LAYERS, **STACKS}[name](rng)
    problem = make_problem(net, rng, **({"lengths": LENGTHS} if padded else {}))
    grad_inputs, grad_state, grads = problem.analytic()

    checked = {"inputs": (grad_inputs, problem.inputs)}
    states = zip(as_tuple(grad_state), as_tuple(problem.state), strict=True)
    for index, (grad, value) in enumerate(states):
        checked[f"state[{index}]"] = (grad, value)
    assert set(grads) == set(problem.net.params)
    for param_name, value in problem.net.params.items():
        checked[param_name] = (grads[param_name], value)

    if padded:  # the padded steps of the second row do not touch the loss
        np.testing.assert_array_equal(grad_inputs[LENGTHS[1] :, 1], 0.0)
    for what, (analytic, value) in checked.items():
        assert analytic.shape == value.shape, what
        assert np.abs(analytic).max() > 1e-3, f"{what}: gradient unexpectedly ~0"
        numeric = numerical_gradient(problem.loss, value)
        assert relative_error(analytic, numeric) < TOLERANCE, what


def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    numeric = numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(numeric, 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, [[0.5, -1.0], [2.0, 0.25]])  # restored after perturbing


def test_relative_error_detects_a_wrong_gradient():
    good = np.array([1.0, 2.0, 3.0])
    assert relative_error(good, good + 1e-12) < 1e-12
    assert relative_error(good, 2 * good) > 0.1


def test_numerical_gradient_rejects_float32():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))


def test_softmax_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((5, 4))
    targets = np.array([0, 3, 1, 1, 2])
    _, grad = scratch.softmax_cross_entropy(logits, targets)
    numeric = numerical_gradient(lambda: scratch.softmax_cross_entropy(logits, targets)[0], logits)
    assert relative_error(grad, numeric) < TOLERANCE


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_char_rnn_gradients_match_finite_differences(cell):
    config = scratch.CharRNNConfig(hidden_size=5, cell=cell, num_layers=2, seed=1)
    model = scratch.CharRNN(vocab_size=4, config=config)
    inputs, targets = np.array([0, 2, 1, 3, 3]), np.array([2, 1, 3, 3, 0])
    rng = np.random.default_rng(0)
    _, zero_state, _ = model.forward(inputs)
    state = tuple(rng.standard_normal(s.shape) for s in as_tuple(zero_state))
    state = state if cell == "lstm" else state[0]
    _, grads, _ = model.loss_and_grads(inputs, targets, state)
    assert set(grads) == set(model.params)
    for name, value in model.params.items():
        numeric = numerical_gradient(lambda: model.loss_and_grads(inputs, targets, state)[0], value)
        assert relative_error(grads[name], numeric) < TOLERANCE, name
