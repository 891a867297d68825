"""The native boundary checks every tensor itself: bad ones raise, none reaches a kernel.

These call the compiled extension directly, bypassing every Python-side check, with fake,
meta, wrong-size, wrong-dtype, non-contiguous and storage-truncated tensors.
"""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from rnnkit import engine
from rnnkit.engine import checks

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

SEQ, BATCH, HIDDEN = 3, 2, 4
GATES = 4  # LSTM


def native():
    from rnnkit.engine._loader import require_native

    return require_native()


def forward_kwargs(save: bool = True) -> dict:
    """Valid arguments of ``_native.forward`` for an LSTM without projection."""
    new = torch.zeros
    steps = SEQ if save else 1
    return dict(
        mode=checks.MODE_IDS["LSTM"], reverse=False, save=save, threads=1, pack=True,
        xg=torch.randn(SEQ, BATCH, GATES * HIDDEN), bias=torch.randn(GATES * HIDDEN),
        h0=new(BATCH, HIDDEN), c0=new(BATCH, HIDDEN), w_hh=torch.randn(GATES * HIDDEN, HIDDEN),
        b_hn=None, w_hr=None, lengths=None, y=new(SEQ, BATCH, HIDDEN), h_n=new(BATCH, HIDDEN),
        c_n=new(BATCH, HIDDEN), gates=new(steps, BATCH, GATES * HIDDEN),
        aux=new(steps, BATCH, HIDDEN), m=None, work=new(3 * BATCH * HIDDEN))


def truncated(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor whose storage was shrunk below what its shape addresses."""
    clone = tensor.clone()
    clone.untyped_storage().resize_(clone.element_size())
    return clone


def test_valid_arguments_run():
    kwargs = forward_kwargs()
    native().forward(**kwargs)
    assert kwargs["y"].abs().sum() > 0


BAD = {
    "meta": lambda t: torch.empty_like(t, device="meta"),
    "wrong size": lambda t: torch.zeros(t.numel() + 1),
    "wrong dtype": lambda t: t.double(),
    "non-contiguous": lambda t: torch.zeros(*t.shape[:-1], 2 * t.shape[-1])[..., ::2],
    "storage too small": truncated,
    "not a tensor": lambda t: t.tolist(),
}


@pytest.mark.parametrize("name", ["xg", "h0", "c0", "w_hh", "y", "h_n", "c_n", "gates", "aux",
                                  "work"])
@pytest.mark.parametrize("bad", sorted(BAD))
def test_forward_refuses_each_bad_tensor_by_name(name, bad):
    kwargs = forward_kwargs()
    kwargs[name] = BAD[bad](kwargs[name])
    with pytest.raises((TypeError, ValueError), match=rf"rnnkit\.engine: .*\b{name}\b"):
        native().forward(**kwargs)


def test_forward_refuses_fake_tensors():
    kwargs = forward_kwargs()
    with FakeTensorMode() as mode:
        kwargs["y"] = mode.from_tensor(kwargs["y"])
    with pytest.raises(TypeError, match="y: expected a plain CPU tensor with real storage"):
        native().forward(**kwargs)


def test_forward_refuses_lengths_out_of_range():
    kwargs = forward_kwargs()
    kwargs["lengths"] = torch.tensor([SEQ, SEQ + 1])
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 3\], got 4 at row 1"):
        native().forward(**kwargs)


def test_forward_refuses_missing_and_inconsistent_arguments():
    kwargs = forward_kwargs()
    kwargs["c0"] = None
    with pytest.raises(TypeError, match="c0: expected a tensor, got None"):
        native().forward(**kwargs)
    kwargs = forward_kwargs()
    kwargs["w_hh"] = torch.randn(GATES * HIDDEN + 1, HIDDEN)
    with pytest.raises(ValueError, match="inconsistent sizes"):
        native().forward(**kwargs)
    with pytest.raises(TypeError):
        native().forward(*forward_kwargs().values())  # keywords only


def backward_kwargs() -> dict:
    forward = forward_kwargs()
    native().forward(**forward)
    new = torch.zeros
    return dict(
        mode=forward["mode"], reverse=False, threads=1, w_hh=forward["w_hh"], w_hr=None,
        dy=torch.randn(SEQ, BATCH, HIDDEN), dh_n=new(BATCH, HIDDEN), dc_n=new(BATCH, HIDDEN),
        y=forward["y"], h0=forward["h0"], c0=forward["c0"], gates=forward["gates"],
        aux=forward["aux"], lengths=None, dgx=new(SEQ, BATCH, GATES * HIDDEN),
        dgh=new(SEQ, BATCH, GATES * HIDDEN), dh0=new(BATCH, HIDDEN), dc0=new(BATCH, HIDDEN),
        dhtot=None, work=new(5 * BATCH * HIDDEN))


@pytest.mark.parametrize("name", ["dy", "y", "gates", "dgx", "dh0", "work"])
@pytest.mark.parametrize("bad", ["meta", "wrong size", "storage too small"])
def test_backward_refuses_each_bad_tensor_by_name(name, bad):
    kwargs = backward_kwargs()
    native().backward(**kwargs)  # valid as built
    kwargs[name] = BAD[bad](kwargs[name])
    with pytest.raises((TypeError, ValueError), match=rf"\b{name}\b"):
        native().backward(**kwargs)


def stream_call(**replace):
    torch.manual_seed(0)
    layer = torch.nn.GRU(5, HIDDEN)
    plan = engine.StreamStep("GRU", [(layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0,
                                      layer.bias_hh_l0, None)])
    args = dict(x=torch.randn(BATCH, 5), h=torch.zeros(1, BATCH, HIDDEN), c=None,
                h_n=torch.zeros(1, BATCH, HIDDEN), c_n=None)
    args.update(replace)
    with torch.no_grad():
        return native().stream(plan._plan, *args.values())


def test_stream_refuses_an_input_that_requires_grad():
    with pytest.raises(RuntimeError, match="streaming steps record no gradients"):
        torch.manual_seed(0)
        layer = torch.nn.GRU(5, HIDDEN)
        plan = engine.StreamStep("GRU", [(layer.weight_ih_l0, layer.weight_hh_l0,
                                          layer.bias_ih_l0, layer.bias_hh_l0, None)])
        native().stream(plan._plan, torch.randn(BATCH, 5, requires_grad=True),
                        torch.zeros(1, BATCH, HIDDEN), None, torch.zeros(1, BATCH, HIDDEN), None)


@pytest.mark.parametrize("name", ["x", "h", "h_n"])
@pytest.mark.parametrize("bad", ["meta", "wrong size", "storage too small", "non-contiguous"])
def test_stream_refuses_each_bad_tensor_by_name(name, bad):
    h_n = torch.zeros(1, BATCH, HIDDEN)
    y = stream_call(h_n=h_n)  # valid as built: a new tensor holding the last layer's output
    assert y.shape == (BATCH, HIDDEN) and torch.equal(y, h_n[-1])
    assert y.data_ptr() != h_n.data_ptr()
    good = {"x": torch.randn(BATCH, 5), "h": torch.zeros(1, BATCH, HIDDEN),
            "h_n": torch.zeros(1, BATCH, HIDDEN)}[name]
    if (name, bad) == ("x", "non-contiguous"):
        return  # accepted: copied once (test below)
    with pytest.raises((TypeError, ValueError), match=rf"\b{name}\b"):
        stream_call(**{name: BAD[bad](good)})


def test_stream_copies_a_strided_input_after_checking_its_storage():
    batch_major = torch.randn(BATCH, 6, 5)  # (batch, seq, feature): x_t is a strided view
    x_t = batch_major[:, 2]
    assert not x_t.is_contiguous()
    assert torch.equal(stream_call(x=x_t), stream_call(x=x_t.contiguous()))
    shrunk = torch.randn(BATCH, 6, 5)
    view = shrunk[:, 2]
    shrunk.untyped_storage().resize_(4 * 5)
    with pytest.raises(ValueError, match="x: the tensor's storage"):
        stream_call(x=view)


@pytest.mark.parametrize("threads", [0, 1025])
def test_every_entry_refuses_a_thread_count_outside_1_to_1024(threads):
    message = rf"threads: expected 1-1024, got {threads}"
    with pytest.raises(ValueError, match=message):
        native().forward(**{**forward_kwargs(), "threads": threads})
    with pytest.raises(ValueError, match=message):
        native().backward(**{**backward_kwargs(), "threads": threads})
    torch.manual_seed(0)
    layer = torch.nn.GRU(5, HIDDEN)
    plan = engine.StreamStep("GRU", [(layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0,
                                      layer.bias_hh_l0, None)])
    bad_plan = (*plan._plan[:6], threads, *plan._plan[7:])
    with pytest.raises(ValueError, match=message), torch.no_grad():
        native().stream(bad_plan, torch.randn(BATCH, 5), torch.zeros(1, BATCH, HIDDEN), None,
                        torch.zeros(1, BATCH, HIDDEN), None)
