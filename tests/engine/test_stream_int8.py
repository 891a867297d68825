"""engine.quantized.Int8StreamStep: one native call advances stacked int8 layers one step,
equal to engine.quantized.recurrence step by step at any thread count, and refuses stale or
unsafe arguments."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rnnkit import engine

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def make_layers(mode, input_size, hidden, layers, proj=0):
    """``(packed layers, float sources)`` with random weights, as recurrence() takes them."""
    from rnnkit.engine import quantized
    from rnnkit.engine.ops import _gate_bias

    gates = GATES[mode]
    out = proj or hidden
    packed, sources = [], []
    for layer in range(layers):
        w_ih = torch.randn(gates * hidden, input_size if layer == 0 else out) * 0.3
        w_hh = torch.randn(gates * hidden, out) * 0.3
        b_ih, b_hh = torch.randn(gates * hidden) * 0.1, torch.randn(gates * hidden) * 0.1
        w_hr = torch.randn(proj, hidden) * 0.3 if proj else None
        bias, b_hn = _gate_bias(mode, w_ih, b_ih, b_hh, gates * hidden, hidden)
        packed.append((quantized.pack(w_ih, gates), quantized.pack(w_hh, gates),
                       None if w_hr is None else quantized.pack(w_hr), bias.contiguous(),
                       None if b_hn is None else b_hn.contiguous()))
        sources += [t for t in (w_ih, w_hh, b_ih, b_hh, w_hr) if t is not None]
    return packed, sources


def whole_sequence(mode, x, packed, hidden, out):
    """Outputs ``(seq, batch, out)`` and final states of recurrence() layer after layer."""
    from rnnkit.engine import quantized

    batch = x.shape[1]
    h_n, c_n = [], []
    for ih, hh, hr, bias, b_hn in packed:
        c0 = torch.zeros(batch, hidden) if mode == "LSTM" else None
        x, h, c = quantized.recurrence(mode, x, torch.zeros(batch, out), c0, ih, hh, hr, bias,
                                       b_hn)
        h_n.append(h)
        c_n.append(c)
    return x, torch.stack(h_n), (torch.stack(c_n) if mode == "LSTM" else None)


@pytest.mark.parametrize(("mode", "proj"), [("LSTM", 0), ("LSTM", 20), ("GRU", 0),
                                            ("RNN_TANH", 0), ("RNN_RELU", 0)])
@pytest.mark.parametrize(("threads", "hidden"), [(1, 40), (2, 40), (2, 16)])
def test_steps_equal_the_whole_sequence(mode, proj, threads, hidden, isa):
    """Every ISA's kernels; 2 threads on 3 blocks of 16 units, and on 1 (one thread idle)."""
    from rnnkit.engine import quantized

    torch.manual_seed(1)
    proj = min(proj, hidden - 1)
    out, layers, batch = proj or hidden, 2, 3
    packed, sources = make_layers(mode, 7, hidden, layers, proj)
    plan = quantized.Int8StreamStep(mode, packed, sources, threads=threads)
    x = torch.randn(6, batch, 7)
    want, want_h, want_c = whole_sequence(mode, x, packed, hidden, out)
    got, h, c = _steps(plan, x, layers, hidden, out, mode == "LSTM", states=True)
    assert torch.equal(got, want)
    assert torch.equal(h, want_h)
    assert c is None or torch.equal(c, want_c)


def test_changed_sources_are_refused_until_rebuilt():
    from rnnkit.engine import quantized

    packed, sources = make_layers("GRU", 5, 16, 1)
    plan = quantized.Int8StreamStep("GRU", packed, sources)
    x, h = torch.randn(1, 5), torch.zeros(1, 1, 16)
    plan.run_into(x, h, None, torch.empty_like(h), None)
    sources[1].add_(0.0)  # in place: the version counter moves even when values do not
    with pytest.raises(quantized.StaleSourcesError):
        plan.run_into(x, h, None, torch.empty_like(h), None)
    plan = quantized.Int8StreamStep("GRU", packed, sources)
    plan.run_into(x, h, None, torch.empty_like(h), None)


def test_unsafe_arguments_are_refused():
    from rnnkit.engine import quantized

    packed, sources = make_layers("LSTM", 5, 16, 2)
    plan = quantized.Int8StreamStep("LSTM", packed, sources)
    x, h, c = torch.randn(2, 5), torch.zeros(2, 2, 16), torch.zeros(2, 2, 16)
    with pytest.raises(ValueError, match="h_n, c_n: expected memory apart"):
        plan.run_into(x, h, c, h, torch.empty_like(c))
    with pytest.raises(ValueError, match="x: expected shape"):
        plan.run_into(torch.randn(3, 5), h, c, torch.empty_like(h), torch.empty_like(c))
    with pytest.raises(ValueError, match="c: expected"):
        plan.run_into(x, h, torch.zeros(2, 2, 8), torch.empty_like(h), torch.empty_like(c))
    with pytest.raises(TypeError, match="c: expected a tensor, got None"):
        plan.run_into(x, h, None, torch.empty_like(h), None)
    with pytest.raises(TypeError, match="x: expected dtype"):
        plan.run_into(x.double(), h, c, torch.empty_like(h), torch.empty_like(c))


def test_a_second_thread_only_for_large_steps():
    from rnnkit.engine import quantized

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        # 4 * 64 * 128 = 32K multiply-adds: a barrier would cost more than the step.
        assert quantized._stream_threads("LSTM", 1, 64, 64, 64) == 1
        # 4 * 256 * 512 = 512K: each thread reads its half of 512 KB of weights.
        assert quantized._stream_threads("LSTM", 1, 256, 256, 256) == 2
        # Batch rows multiply the work: GRU H=128 needs 3 rows of 98K.
        assert quantized._stream_threads("GRU", 1, 128, 128, 128) == 1
        assert quantized._stream_threads("GRU", 3, 128, 128, 128) == 2
    finally:
        torch.set_num_threads(previous)


def _steps(plan, x, layers, hidden, out, lstm, states=False):
    """Outputs of ``plan`` over ``x (seq, batch, input)`` from a zero state (with
    ``states``: and the final ``h``, ``c``)."""
    batch = x.shape[1]
    h = torch.zeros(layers, batch, out)
    c = torch.zeros(layers, batch, hidden) if lstm else None
    got = []
    for x_t in x:
        h_n = torch.empty_like(h)
        c_n = None if c is None else torch.empty_like(c)
        got.append(plan.run_into(x_t, h, c, h_n, c_n))
        h, c = h_n, c_n
    return (torch.stack(got), h, c) if states else torch.stack(got)


def _tamper(tensor, how):
    """Change a packed tensor the plan was built from the ways Python can."""
    if how == "resize":
        tensor.resize_(0)
    elif how == "overwrite":
        # Out-of-bounds row sums and weights: read, they would overflow the accumulators.
        tensor.fill_(-(2**30) if tensor.dtype == torch.int32 else 7)
    elif how == "new storage":
        tensor.set_(torch.empty(3, dtype=tensor.dtype))
    else:  # another dtype through .data
        tensor.data = torch.zeros(2, dtype=torch.float64)


@pytest.mark.parametrize("how", ["resize", "overwrite", "new storage", "dtype"])
@pytest.mark.parametrize(("mode", "proj"), [("LSTM", 0), ("LSTM", 9), ("GRU", 0)])
def test_the_plan_runs_on_its_own_checked_copies(mode, proj, how, isa):
    """The packed tensors stay reachable from Python after the plan is built; whatever is done
    to them, the plan keeps computing with what it checked at build time."""
    from rnnkit.engine import quantized

    torch.manual_seed(2)
    hidden, layers = 20, 2
    packed, sources = make_layers(mode, 7, hidden, layers, proj)
    # GRU's b_hn is a view of b_hh (a source): changing it would move b_hh's version counter
    # and rightly stop the plan. Here only the packed copies change.
    packed = [(*front, bias.clone(), None if b_hn is None else b_hn.clone())
              for *front, bias, b_hn in packed]
    plan = quantized.Int8StreamStep(mode, packed, sources)
    x = torch.randn(4, 2, 7)
    want = _steps(plan, x, layers, hidden, proj or hidden, mode == "LSTM")
    for ih, hh, hr, bias, b_hn in packed:
        for matrix in (ih, hh, hr):
            if matrix is not None:
                for tensor in (matrix.weight, matrix.scale, matrix.rowsum):
                    _tamper(tensor, how)
        for tensor in (bias, b_hn):
            if tensor is not None:
                _tamper(tensor, how)
    assert torch.equal(_steps(plan, x, layers, hidden, proj or hidden, mode == "LSTM"), want)


def test_packed_tensors_are_checked_when_the_plan_is_built():
    from rnnkit.engine import quantized

    def build(layer_change):
        packed, sources = make_layers("GRU", 5, 16, 1)
        packed[0] = layer_change(*packed[0])
        return quantized.Int8StreamStep("GRU", packed, sources)

    def rowsum_out_of_bounds(ih, hh, hr, bias, b_hn):
        hh.rowsum[3] = 128 * 16 + 1  # no int8 row of 16 values sums to this
        return ih, hh, hr, bias, b_hn

    with pytest.raises(ValueError, match=r"r_hh: expected row sums .* at row 3"):
        build(rowsum_out_of_bounds)
    with pytest.raises(ValueError, match=r"w_ih: expected shape \(3, 2, 16, 4\), got \(3, 1,"):
        build(lambda ih, *rest: (replace(ih, weight=ih.weight[:, :1].contiguous()), *rest))
    with pytest.raises(TypeError, match="s_hh: expected dtype Float, got Double"):
        build(lambda ih, hh, *rest: (ih, replace(hh, scale=hh.scale.double()), *rest))
    with pytest.raises(TypeError, match="b_hn: expected a tensor, got None"):
        build(lambda ih, hh, hr, bias, b_hn: (ih, hh, hr, bias, None))


def test_sources_replaced_after_the_plan_was_built_are_refused():
    """A source whose storage was swapped (``.data =``, ``set_``) makes the plan refuse to run
    (the streamers then repack); the plan holds the sources, so their pointers stay valid."""
    from rnnkit.engine import quantized

    packed, sources = make_layers("GRU", 5, 16, 1)
    plan = quantized.Int8StreamStep("GRU", packed, sources)
    x, h = torch.randn(1, 5), torch.zeros(1, 1, 16)
    sources[0].data = sources[0].data.clone()
    with pytest.raises(quantized.StaleSourcesError):
        plan.run_into(x, h, None, torch.empty_like(h), None)
    plan = quantized.Int8StreamStep("GRU", packed, sources)
    del sources[:]  # the plan's references keep them alive
    plan.run_into(x, h, None, torch.empty_like(h), None)


def _one_step_plan():
    """A GRU plan and ``step(x_t)`` running it from a zero state (each output depends on x_t
    only), with the outputs of two inputs computed by another plan."""
    from rnnkit.engine import quantized

    torch.manual_seed(4)
    packed, sources = make_layers("GRU", 5, 16, 1)
    plan = quantized.Int8StreamStep("GRU", packed, sources)
    h = torch.zeros(1, 1, 16)

    def step(x_t):
        return plan.run_into(x_t, h, None, torch.empty_like(h), None)

    xs = (torch.randn(1, 5), torch.randn(1, 5))
    other = quantized.Int8StreamStep("GRU", packed, sources)
    wants = [other.run_into(x_t, h, None, torch.empty_like(h), None) for x_t in xs]
    assert not torch.equal(*wants)
    return step, xs, wants


def test_an_output_nobody_holds_is_written_again_and_one_held_is_not():
    step, (x1, x2), (want1, want2) = _one_step_plan()
    first = step(x1)
    address = id(first)
    del first
    again = step(x2)  # nothing could observe the first output: it is reused
    assert id(again) == address and torch.equal(again, want2)
    held = step(x1)  # `again` is held: a new tensor, `again` keeps its values
    assert held is not again and torch.equal(held, want1) and torch.equal(again, want2)


def test_a_loop_rebinding_its_output_alternates_two_tensors():
    # `y = step(x)` holds the last output during the call and lets it go when y is rebound:
    # the plan keeps two, and each call writes the one nobody holds any more.
    step, (x1, x2), (want1, want2) = _one_step_plan()
    y = step(x1)
    ids = []
    for index in range(6):
        x, want = (x2, want2) if index % 2 == 0 else (x1, want1)
        y = step(x)
        assert torch.equal(y, want)
        ids.append(id(y))
    assert len(set(ids)) == 2 and ids[0] != ids[1] and ids[:2] * 2 == ids[2:]
    kept = [step(x1), step(x2), step(x1)]  # all held: three distinct tensors, values intact
    assert len({id(out) for out in kept}) == 3
    for out, want in zip(kept, (want1, want2, want1), strict=True):
        assert torch.equal(out, want)


class _Sub(torch.Tensor):
    pass


def _keep(y, how):
    """Do to an output what a caller may do before dropping it; returns a function giving the
    values of what stays behind as a flat tensor (or None: nothing stays, or it died) and a
    check on the next outputs."""
    import weakref

    plain = lambda out: type(out) is torch.Tensor and not out.requires_grad  # noqa: E731
    if how == "view":
        view = y[0]
        return lambda: view.reshape(-1), plain
    if how == "weak reference":  # alive until the plan lets go of it, then dead
        ref = weakref.ref(y)
        return lambda: None if ref() is None else ref().reshape(-1), plain
    if how == "numpy":
        array = y.numpy()
        return lambda: torch.from_numpy(array).reshape(-1), plain
    if how == "storage":
        storage = y.untyped_storage()
        return lambda: torch.tensor([], dtype=torch.float32).set_(storage), plain
    if how == "attribute":
        y.tag = "mine"
        return lambda: None, lambda out: plain(out) and not hasattr(out, "tag")
    if how == "in place":
        y.mul_(2.0)
        return lambda: None, plain
    if how == "requires grad":
        y.requires_grad_()
        return lambda: None, plain
    if how == "resized":
        y.resize_(3, 40)
        return lambda: None, lambda out: plain(out) and out.shape == (1, 16)
    if how == "class":
        y.__class__ = _Sub
        return lambda: None, plain
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["view", "weak reference", "numpy", "storage", "attribute",
                                 "in place", "requires grad", "resized", "class"])
def test_an_output_seen_or_changed_by_the_caller_is_never_written_again(how):
    step, (x1, x2), (want1, want2) = _one_step_plan()
    y = step(x1)
    kept, check = _keep(y, how)
    del y
    for _ in range(2):
        out = step(x2)
        assert check(out) and torch.equal(out, want2)
        left = kept()
        assert left is None or torch.equal(left[:16], want1.reshape(-1))
        del out


def test_outputs_made_in_inference_mode_are_inference_tensors():
    step, (x1, x2), (want1, want2) = _one_step_plan()
    y = step(x1)
    del y
    with torch.inference_mode():
        inner = step(x2)
    assert inner.is_inference() and torch.equal(inner, want2)
    del inner
    outer = step(x1)
    assert not outer.is_inference() and torch.equal(outer, want1)


def test_threads_sharing_a_plan_get_their_own_outputs():
    """Freeing an output lets torch release the GIL mid-step, so steps of other threads on
    the same plan interleave with the reuse; each thread checks every output it held."""
    import sys
    import threading

    step, xs, wants = _one_step_plan()
    failures = []

    def run(index):
        held = []
        for i in range(300):
            held.append(step(xs[index]))
            if i % 3 == 0:
                held.clear()  # dropped: the plan may write into these again
            if not all(torch.equal(y, wants[index]) for y in held):
                failures.append(index)
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads between (nearly) every two steps
    try:
        threads = [threading.Thread(target=run, args=(i % 2,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures
