"""Packed weights kept between inference calls (``_native.infer(..., panels=)``, see
``PanelCache``): the bits must be those of a call that packs, on the packing call and every
call after it; the kernel must repack whenever the weights changed (pointer, version
counter, sampled values, shape, dtype, ISA); and the buffer, a tensor the caller hands in,
must be checked like every other argument."""

from __future__ import annotations

import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit import engine
from rnnkit.engine import ops

from .test_boundary import native
from .test_determinism import misaligned
from .test_pipeline import call

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

MODES = {0: "RNN_TANH", 1: "RNN_RELU", 2: "LSTM", 3: "GRU"}


def buffer_for(kwargs: dict) -> torch.Tensor:
    """A panels buffer sized for ``kwargs``' layer-direction."""
    out, hidden = kwargs["w_hh"].shape[1], kwargs["w_hh"].shape[0] // {0: 1, 1: 1, 2: 4, 3: 3}[
        kwargs["mode"]]
    return ops.panel_buffer(MODES[kwargs["mode"]], kwargs["x"].shape[2], hidden, out,
                            kwargs["w_hh"].dtype)


def assert_same(expected, got) -> None:
    for index, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b), f"result {index} differs from a packing call's"


def assert_kept_matches(kwargs: dict, panels: torch.Tensor, calls: int = 3, **extra) -> None:
    """Calls with ``panels`` (the first may pack, the rest reuse) equal calls without."""
    kwargs = {**kwargs, **extra}
    expected = native().infer(**kwargs)
    for _ in range(calls):
        assert_same(expected, native().infer(**kwargs, panels=panels))


@pytest.mark.parametrize(("mode", "proj"), [("RNN_TANH", 0), ("RNN_RELU", 0), ("GRU", 0),
                                            ("LSTM", 0), ("LSTM", 5)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("threads", "pipeline"), [(1, 0), (2, 0), (2, 1), (3, 1)])
def test_kept_panels_give_a_packing_calls_bits(mode, proj, reverse, threads, pipeline, isa):
    kwargs = call(mode, 37, 1, 40, 19, proj=proj, reverse=reverse)
    assert_kept_matches(kwargs, buffer_for(kwargs), threads=threads, pipeline=pipeline)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 3, 15])
def test_kept_panels_batches_and_dtypes(dtype, batch):
    kwargs = call("GRU", 23, batch, 33, 70, dtype=dtype, bias=False)
    assert_kept_matches(kwargs, buffer_for(kwargs))


def test_an_in_place_update_repacks():
    """An optimizer step or any in-place op moves the version counter."""
    kwargs = call("LSTM", 30, 1, 32, 32)
    panels = buffer_for(kwargs)
    native().infer(**kwargs, panels=panels)
    for name in ("w_ih", "w_hh"):
        with torch.no_grad():
            kwargs[name][0, 0] += 0.5  # one element: only the version counter can tell
        assert_kept_matches(kwargs, panels, calls=2)


def test_a_write_through_data_is_caught_by_the_sampled_values():
    kwargs = call("GRU", 30, 1, 32, 32)
    panels = buffer_for(kwargs)
    native().infer(**kwargs, panels=panels)
    version = kwargs["w_hh"]._version
    kwargs["w_hh"].data.mul_(0.5)  # the version counter does not move
    assert kwargs["w_hh"]._version == version
    assert_kept_matches(kwargs, panels, calls=2)


def test_other_weights_repack():
    """Weights at another address (a second layer sharing a buffer by mistake, a replaced
    parameter) are packed again, not read from the first one's panels."""
    first, second = call("LSTM", 20, 1, 24, 24, seed=1), call("LSTM", 20, 1, 24, 24, seed=2)
    panels = buffer_for(first)
    for _ in range(2):
        assert_kept_matches(first, panels, calls=1)
        assert_kept_matches(second, panels, calls=1)


def test_an_isa_change_repacks():
    """The packed layout depends on the kernels' vector width."""
    previous = engine.isa()
    kwargs = call("LSTM", 25, 1, 40, 40)
    panels = buffer_for(kwargs)
    try:
        for isa in engine.supported_isas() * 2:
            engine.set_isa(isa)
            assert_kept_matches(kwargs, panels, calls=2)
    finally:
        engine.set_isa(previous)


def test_kept_panels_read_misaligned_inputs():
    kwargs = call("LSTM", 40, 1, 40, 17)
    panels = buffer_for(kwargs)
    expected = native().infer(**kwargs)
    shifted = {**kwargs, "x": misaligned(kwargs["x"], 3), "w_hh": misaligned(kwargs["w_hh"], 5)}
    for _ in range(2):
        assert_same(expected, native().infer(**shifted, panels=panels))


@pytest.mark.parametrize(("panels", "error", "message"), [
    (torch.empty(7), ValueError, "panels: expected shape"),
    ("float64", TypeError, "panels: expected dtype Float"),
    ("2d", ValueError, "panels: expected shape"),
    ("strided", ValueError, "panels: expected a contiguous tensor"),
    ("misaligned", ValueError, "panels: expected a 64-byte aligned data pointer"),
    ("meta", ValueError, "panels: expected a strided CPU tensor"),
    ([1.0], TypeError, "panels: expected a tensor, got list"),
])
def test_bad_panels_are_refused_by_name(panels, error, message):
    kwargs = call("LSTM", 10, 1, 24, 24)
    good = buffer_for(kwargs)
    size = good.numel()
    made = {"float64": lambda: torch.empty(size, dtype=torch.float64),
            "2d": lambda: torch.empty(1, size),
            "strided": lambda: torch.empty(2 * size)[::2],
            "misaligned": lambda: torch.empty(size + 16)[1:size + 1],
            "meta": lambda: torch.empty(size, device="meta")}
    panels = made[panels]() if isinstance(panels, str) else panels
    with pytest.raises(error, match=message):
        native().infer(**kwargs, panels=panels)


@pytest.mark.parametrize("shared", ["x", "w_ih", "w_hh", "h0"])
def test_panels_sharing_memory_with_an_argument_are_refused(shared):
    """Packing into the weights (or the input) would overwrite what the call reads."""
    kwargs = call("LSTM", 10, 1, 24, 24)
    size, used = buffer_for(kwargs).numel(), kwargs[shared].numel()
    storage = torch.zeros(used + size + 64)
    start = (-storage.data_ptr() // 4) % 16  # 64-byte aligned
    after = start + (used + 15) // 16 * 16  # the panels start past the argument, aligned
    kwargs[shared] = storage[start:start + used].view(kwargs[shared].shape)
    with pytest.raises(ValueError, match="panels: expected memory of its own"):
        native().infer(**kwargs, panels=storage[after:after + size])


def test_panel_sizes_are_checked():
    with pytest.raises(ValueError, match="panels_size: expected sizes in 1-2"):
        native().panels_size(2, 0, 64, 64, False, False)
    with pytest.raises(ValueError, match="mode"):
        native().panels_size(9, 8, 64, 64, False, False)
    with pytest.raises(TypeError, match=r"dtype: expected torch\.float32 or torch\.float64"):
        ops.panel_buffer("LSTM", 8, 8, 8, torch.float16)
    # float64 panels hold the same elements after a header of half as many
    assert (native().panels_size(2, 8, 16, 16, False, False)
            == native().panels_size(2, 8, 16, 16, False, True) + 16)


def test_layered_states_have_a_leading_axis():
    kwargs = call("LSTM", 12, 3, 16, 8)
    y, h, c = native().infer(**kwargs)
    y2, h2, c2 = native().infer(**kwargs, layered=True)
    assert h2.shape == (1, 3, 16) and c2.shape == (1, 3, 16)
    assert torch.equal(h2[0], h) and torch.equal(c2[0], c) and torch.equal(y2, y)
    with pytest.raises(ValueError, match="layered: expected 0 or 1, got 2"):
        native().infer(**kwargs, layered=2)


def test_concurrent_callers_sharing_panels_get_the_same_bits():
    """Calls from several Python threads on one buffer: each either packs (the same bytes) or
    reads a sealed packing; none sees a half-written one."""
    kwargs = call("LSTM", 60, 1, 64, 64)
    panels = buffer_for(kwargs)
    expected = native().infer(**kwargs)
    failures = []

    def worker() -> None:
        for _ in range(15):
            got = native().infer(**{**kwargs, "threads": 2}, panels=panels, pipeline=1)
            if not all(torch.equal(a, b) for a, b in zip(expected[:2], got[:2], strict=True)):
                failures.append(got)

    for _ in range(3):
        panels.zero_()  # unsealed: the first calls race to pack
        workers = [threading.Thread(target=worker) for _ in range(4)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    assert not failures


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(["RNN_TANH", "GRU", "LSTM"]), steps=st.integers(1, 40),
       batch=st.integers(1, 15), hidden=st.integers(1, 50), input_size=st.integers(1, 50),
       pipeline=st.booleans())
def test_kept_panels_match_on_random_shapes(mode, steps, batch, hidden, input_size, pipeline):
    kwargs = call(mode, steps, batch, hidden, input_size)
    assert_kept_matches(kwargs, buffer_for(kwargs), calls=2, threads=2 if pipeline else 1,
                        pipeline=int(pipeline))


def test_a_sealed_buffer_is_read_not_repacked():
    """After a packing call the header is sealed and the next call reads the kept panels:
    spoiling them (header untouched) changes its result, which shows the packing is skipped.
    Changing a weight then repacks and restores the right result."""
    kwargs = call("LSTM", 20, 1, 32, 32)
    panels = buffer_for(kwargs)
    expected = native().infer(**kwargs, panels=panels)
    header = 128 // panels.element_size()
    assert panels[:header].view(torch.int64)[12] == 1  # the seal word after the 12-word key
    panels[header:] = 0.25
    spoiled = native().infer(**kwargs, panels=panels)
    assert not torch.equal(spoiled[0], expected[0])
    with torch.no_grad():
        kwargs["w_hh"].mul_(1.0)  # same values, a new version: repack
    assert_same(expected, native().infer(**kwargs, panels=panels))
