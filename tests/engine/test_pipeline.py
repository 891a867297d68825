"""Pipelined inference (``_native.infer(..., pipeline=1)``): thread 0 runs the recurrence while
a second thread projects the input a chunk of steps ahead. The bits must be one thread's at
every shape, direction, dtype, ISA and thread count (chunks of 1, 2, 4, ... steps, then a
cap, then at most 128 chunks), and the policy must take it only where it pays."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit import engine
from rnnkit.engine import checks, ops, threads

from .test_boundary import native
from .test_determinism import misaligned

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")


def call(mode: str, steps: int, batch: int, hidden: int, input_size: int, *, proj: int = 0,
         reverse: bool = False, dtype=torch.float32, bias: bool = True, seed: int = 0) -> dict:
    """Keyword arguments of ``_native.infer`` with random values."""
    generator = torch.Generator().manual_seed(seed)
    out = proj or hidden
    rows = checks.GATES[mode] * hidden

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator, dtype=dtype) * scale

    return dict(
        mode=checks.MODE_IDS[mode], reverse=reverse, threads=1,
        x=randn(steps, batch, input_size), h0=randn(batch, out),
        c0=randn(batch, hidden) if mode == "LSTM" else None,
        w_ih=randn(rows, input_size, scale=0.3), w_hh=randn(rows, out, scale=0.3),
        b_ih=randn(rows) if bias else None, b_hh=randn(rows) if bias else None,
        w_hr=randn(out, hidden, scale=0.3) if proj else None)


def assert_same_bits(kwargs: dict, **pipelined) -> None:
    expected = native().infer(**kwargs)
    got = native().infer(**{**kwargs, **pipelined})
    for index, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b), f"result {index} differs from one thread's"


@pytest.mark.parametrize(("mode", "proj"), [("RNN_TANH", 0), ("RNN_RELU", 0), ("GRU", 0),
                                            ("LSTM", 0), ("LSTM", 5)])
@pytest.mark.parametrize("steps", [1, 2, 3, 9, 70, 600])
@pytest.mark.parametrize("reverse", [False, True])
def test_pipelined_call_gives_one_threads_bits(mode, proj, steps, reverse, isa):
    kwargs = call(mode, steps, 1, 24, 19, proj=proj, reverse=reverse)
    for thread_count in (2, 3):
        assert_same_bits(kwargs, threads=thread_count, pipeline=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [2, 7, 15])
def test_pipelined_batches_and_dtypes(dtype, batch, isa):
    kwargs = call("GRU", 41, batch, 33, 300, dtype=dtype, bias=False)
    assert_same_bits(kwargs, threads=2, pipeline=1)


@pytest.mark.parametrize("backend", ["openmp", "pool"])
def test_pipelined_bits_on_either_thread_backend(backend):
    previous = engine.thread_backend()
    engine.set_thread_backend(backend)
    try:
        for mode in ("GRU", "LSTM"):
            assert_same_bits(call(mode, 120, 1, 64, 64), threads=2, pipeline=1)
    finally:
        engine.set_thread_backend(previous)


def test_pipelined_call_reads_misaligned_tensors():
    kwargs = call("LSTM", 50, 1, 40, 17)
    expected = native().infer(**kwargs)
    moved = {name: misaligned(value, 3) if isinstance(value, torch.Tensor) else value
             for name, value in kwargs.items()}
    got = native().infer(**{**moved, "threads": 2, "pipeline": 1})
    for a, b in zip(expected, got, strict=True):
        assert torch.equal(a, b)


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(["RNN_TANH", "GRU", "LSTM"]), steps=st.integers(1, 300),
       batch=st.integers(1, 15), hidden=st.integers(1, 70), input_size=st.integers(1, 70),
       reverse=st.booleans(), thread_count=st.integers(2, 4))
def test_pipelined_bits_property(mode, steps, batch, hidden, input_size, reverse, thread_count):
    kwargs = call(mode, steps, batch, hidden, input_size, reverse=reverse)
    assert_same_bits(kwargs, threads=thread_count, pipeline=1)


def test_pipeline_with_one_thread_is_the_one_thread_call():
    kwargs = call("GRU", 30, 1, 16, 8)
    assert_same_bits(kwargs, pipeline=1)


@pytest.mark.parametrize(("value", "error", "message"), [
    (2, ValueError, "pipeline: expected 0 or 1, got 2"),
    (-1, ValueError, "pipeline: expected 0 or 1, got -1"),
    ("yes", TypeError, "pipeline: expected an int or bool, got str"),
])
def test_infer_refuses_a_bad_pipeline_flag(value, error, message):
    with pytest.raises(error, match=message):
        native().infer(**call("GRU", 3, 1, 4, 5), pipeline=value)


def test_policy_pipelines_long_small_calls_with_two_threads(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert threads.pipelines("GRU", 100, 1, 64, 64)
    assert threads.pipelines("LSTM", 16, 1, 64, 64)
    assert not threads.pipelines("GRU", 16, 1, 64, 64)  # lost or level: bench/pipeline_ab.py
    assert not threads.pipelines("RNN_TANH", 32, 1, 64, 64)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert not threads.pipelines("GRU", 1000, 1, 64, 64)


class Recorder:
    """Stands in for the native module: records each ``infer`` call's thread arguments."""

    def __init__(self):
        self.calls = []

    def infer(self, **kwargs):
        self.calls.append((kwargs["threads"], kwargs["pipeline"]))
        return native().infer(**kwargs)


@pytest.mark.parametrize(("torch_threads", "hidden", "steps", "expected"), [
    (2, 64, 100, (2, True)),   # one thread's worth of work: pipelined
    (2, 64, 8, (1, False)),    # too short to pay for the second thread
    (1, 64, 100, (1, False)),  # torch allows one thread
    (2, 256, 100, (2, False)),  # big enough to split the units of each step
])
def test_layer_call_takes_the_pipeline_where_it_pays(torch_threads, hidden, steps, expected,
                                                     monkeypatch):
    from rnnkit import nn as rnn

    recorder = Recorder()
    monkeypatch.setattr(ops, "require_native", lambda: recorder)
    monkeypatch.setattr(torch, "get_num_threads", lambda: torch_threads)
    torch.manual_seed(0)
    reference = torch.nn.GRU(hidden, hidden)
    layer = rnn.GRU(hidden, hidden, backend="native")
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(steps, 1, hidden)
    with torch.no_grad():
        for _ in range(2):  # the general path, then the remembered fast path
            output, h_n = layer(x)
            expected_output, expected_h = reference(x)
            torch.testing.assert_close(output, expected_output, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(h_n, expected_h, rtol=1e-5, atol=1e-5)
    assert recorder.calls == [expected, expected]


@pytest.mark.parametrize("value", [0, -3, 1025, 10**6])
def test_infer_refuses_a_thread_count_outside_1_to_1024(value):
    with pytest.raises(ValueError, match=rf"threads: expected 1-1024, got {value}"):
        native().infer(**{**call("GRU", 3, 1, 4, 5), "threads": value})


def test_infer_refuses_an_int_argument_that_does_not_fit_an_int():
    with pytest.raises(ValueError, match="threads: expected a value that fits an int"):
        native().infer(**{**call("GRU", 3, 1, 4, 5), "threads": 2**32 + 2})


def test_concurrent_pipelined_calls_from_python_threads_give_one_threads_bits():
    """Calls from several Python threads: while one holds the engine's threads the others run
    alone (the helper is optional), and every result is one thread's."""
    from concurrent.futures import ThreadPoolExecutor

    calls = [call(mode, 90, 1, 48, 32, seed=seed)
             for seed, mode in enumerate(["GRU", "LSTM", "RNN_TANH", "GRU"] * 3)]
    expected = [native().infer(**kwargs) for kwargs in calls]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(5):
            results = list(pool.map(
                lambda kwargs: native().infer(**{**kwargs, "threads": 2, "pipeline": 1}), calls))
            for want, got in zip(expected, results, strict=True):
                for a, b in zip(want, got, strict=True):
                    assert (a is None and b is None) or torch.equal(a, b)
