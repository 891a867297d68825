"""The example script runs end to end, and ``rnnkit.scratch`` stays independent of torch."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit import scratch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "scratch_char_rnn.py"


def run_python(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_example_trains_and_samples_with_tiny_settings(tmp_path):
    text_file = tmp_path / "text.txt"
    text_file.write_text("abcabcabd " * 20, encoding="utf-8")
    tiny = ["--steps", "60", "--hidden-size", "8", "--seq-length", "6", "--print-every", "30"]
    result = run_python(str(EXAMPLE), str(text_file), *tiny, "--sample-length", "12")
    assert result.returncode == 0, result.stderr
    assert "200 characters, 5 distinct" in result.stdout
    losses = [float(x) for x in re.findall(r"loss ([0-9.]+) nats/char", result.stdout)]
    assert len(losses) == 2 and all(0 < loss < np.log(5) for loss in losses)
    samples = re.findall(r"----\n(.*?)\n----", result.stdout, flags=re.S)
    assert len(samples) == 2 and all(len(s) == 12 and set(s) <= set("abcd ") for s in samples)


def test_example_runs_on_its_default_text():
    tiny = ["--steps", "4", "--hidden-size", "8", "--print-every", "2", "--sample-length", "5"]
    result = run_python(str(EXAMPLE), *tiny)
    assert result.returncode == 0, result.stderr
    source = r"the (bundled Shakespeare sample|built-in paragraph): \d+ characters"
    assert re.match(source, result.stdout)
    assert len(re.findall(r"loss [0-9.]+ nats/char", result.stdout)) == 2


def test_example_reports_an_unreadable_file(tmp_path):
    missing = tmp_path / "missing.txt"
    result = run_python(str(EXAMPLE), str(missing), "--steps", "1")
    assert result.returncode != 0
    assert f"cannot read {missing}" in result.stderr


def test_example_rejects_bad_arguments():
    result = run_python(str(EXAMPLE), "--steps", "0")
    assert result.returncode == 2 and "--steps must be >= 1, got 0" in result.stderr


def test_package_docstring_example_runs():
    result = doctest.testmod(scratch, raise_on_error=False)
    assert result.attempted >= 5 and result.failed == 0


def test_scratch_imports_only_numpy():
    code = (
        "import sys, rnnkit.scratch; "
        "bad = [m for m in ('torch', 'rnnkit.nn', 'rnnkit.engine') if m in sys.modules]; "
        "print(bad)"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: scratch.RNNLayer(3, 4, nonlinearity="sigmoid"), ValueError, "nonlinearity"),
        (lambda: scratch.LSTMLayer(3, 4, proj_size=4), ValueError, r"proj_size must be in \[0, "),
        (lambda: scratch.GRU(3, 0), ValueError, "hidden_size must be >= 1, got 0"),
        (lambda: scratch.RNN(3, 4, num_layers=1.0), TypeError, "num_layers must be an int"),
        (lambda: scratch.GRULayer(3, 4).forward([[[0.0] * 3]]), TypeError, "inputs must be a num"),
        (
            lambda: scratch.GRULayer(3, 4).forward(np.zeros((2, 1, 5))),
            ValueError,
            r"inputs must have shape \(\*, \*, 3\), got \(2, 1, 5\)",
        ),
        (
            lambda: scratch.GRULayer(3, 4).forward(np.zeros((2, 1, 3)), np.zeros((2, 4))),
            ValueError,
            r"state must have shape \(1, 4\), got \(2, 4\)",
        ),
        (
            lambda: scratch.LSTMLayer(3, 4).forward(np.zeros((2, 1, 3)), np.zeros((1, 4))),
            TypeError,
            r"state must be a tuple \(h, c\)",
        ),
        (
            lambda: scratch.LSTM(3, 4, 2).forward(np.zeros((2, 1, 3)), (np.zeros((1, 1, 4)),) * 2),
            ValueError,
            r"hx must have shape \(2, 1, 4\), got \(1, 1, 4\)",
        ),
        (
            lambda: scratch.RNNLayer(3, 4).forward(np.zeros((0, 1, 3))),
            ValueError,
            "at least one time step",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_backward_checks_gradient_shapes():
    layer = scratch.RNNLayer(3, 4)
    _, _, cache = layer.forward(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"grad_outputs must have shape \(2, 1, 4\)"):
        layer.backward(cache, np.zeros((2, 1, 5)))


def test_load_params_checks_shapes_and_accepts_array_likes():
    layer = scratch.RNNLayer(2, 3)
    params = {name: value.tolist() for name, value in layer.params.items()}
    layer.load_params(params)
    np.testing.assert_array_equal(layer.params["weight_hh"], np.array(params["weight_hh"]))
    params["weight_hh"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"params\['weight_hh'\] must have shape \(3, 3\)"):
        layer.load_params(params)
