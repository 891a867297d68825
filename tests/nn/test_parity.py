"""rnnkit.nn layers against torch.nn: outputs and every gradient, over a property grid."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.nn.helpers import (
    KINDS,
    as_tuple,
    assert_close_lists,
    available_backends,
    make_pair,
    outputs_and_grads,
)

import rnnkit.nn as rnn


@st.composite
def layer_cases(draw):
    kind = draw(st.sampled_from(KINDS))
    hidden = draw(st.integers(1, 6))
    case = {
        "kind": kind,
        "input_size": draw(st.integers(1, 5)),
        "hidden_size": hidden,
        "num_layers": draw(st.integers(1, 3)),
        "bidirectional": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "proj_size": draw(st.integers(0, hidden - 1)) if kind == "LSTM" else 0,
        "batch": draw(st.integers(1, 4)),
        "seq_len": draw(st.integers(1, 6)),
        "feed": draw(st.sampled_from(["full", "packed", "lengths"])),
        "with_state": draw(st.booleans()),
        "backend": draw(st.sampled_from(available_backends())),
    }
    case["lengths"] = draw(st.lists(st.integers(1, case["seq_len"]), min_size=case["batch"],
                                    max_size=case["batch"]))
    return case


def _run_case(case, dtype):
    options = {k: case[k] for k in ("num_layers", "bidirectional", "batch_first", "bias")}
    if case["proj_size"]:
        options["proj_size"] = case["proj_size"]
    reference, ours = make_pair(case["kind"], case["input_size"], case["hidden_size"],
                                dtype=dtype, backend=case["backend"], **options)
    shape = ((case["batch"], case["seq_len"]) if case["batch_first"]
             else (case["seq_len"], case["batch"]))
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(*shape, case["input_size"], generator=generator, dtype=dtype)
    hx = None
    if case["with_state"]:
        layers = case["num_layers"] * (2 if case["bidirectional"] else 1)
        out_size = case["proj_size"] or case["hidden_size"]
        h0 = torch.randn(layers, case["batch"], out_size, generator=generator, dtype=dtype)
        hx = h0
        if case["kind"] == "LSTM":
            hx = (h0, torch.randn(layers, case["batch"], case["hidden_size"],
                                  generator=generator, dtype=dtype))

    def clone_state():
        return None if hx is None else tuple(t.clone() for t in as_tuple(hx))

    def unpack(state):
        if state is None:
            return None
        return state if case["kind"] == "LSTM" else state[0]

    lengths = None if case["feed"] == "full" else case["lengths"]
    packed = case["feed"] != "full"  # torch.nn only has packing for variable lengths
    expected = outputs_and_grads(reference, x.clone(), unpack(clone_state()), lengths=lengths,
                                 packed=packed, batch_first=case["batch_first"])
    actual = outputs_and_grads(ours, x.clone(), unpack(clone_state()), lengths=lengths,
                               packed=case["feed"] == "packed", batch_first=case["batch_first"])
    return expected, actual


@settings(max_examples=120, deadline=None)
@given(layer_cases())
def test_float64_outputs_and_gradients_match_torch(case):
    (expected_out, expected_grads), (actual_out, actual_grads) = _run_case(case, torch.float64)
    assert_close_lists(actual_out, expected_out, rtol=0, atol=1e-10, what="outputs")
    assert_close_lists(actual_grads, expected_grads, rtol=0, atol=1e-10, what="gradients")


@settings(max_examples=40, deadline=None)
@given(layer_cases())
def test_float32_outputs_and_gradients_match_torch(case):
    (expected_out, expected_grads), (actual_out, actual_grads) = _run_case(case, torch.float32)
    assert_close_lists(actual_out, expected_out, rtol=1e-5, atol=1e-6, what="outputs")
    assert_close_lists(actual_grads, expected_grads, rtol=1e-5, atol=1e-6, what="gradients")


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_moves_both_ways(kind):
    reference, ours = make_pair(kind, 4, 6, num_layers=2, bidirectional=True)
    assert list(reference.state_dict()) == list(ours.state_dict())
    for name, tensor in ours.state_dict().items():
        assert tensor.shape == reference.state_dict()[name].shape, name
    torch.manual_seed(3)
    fresh = type(reference)(4, 6, num_layers=2, bidirectional=True, dtype=torch.float64,
                            **({"nonlinearity": reference.nonlinearity}
                               if kind.startswith("RNN") else {}))
    fresh.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(fresh(x)[0], ours(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_same_initial_weights_as_torch(kind):
    cls_name = "RNN" if kind.startswith("RNN") else kind
    options = {"proj_size": 2} if kind == "LSTM" else {}
    torch.manual_seed(11)
    reference = getattr(torch.nn, cls_name)(3, 5, 2, bidirectional=True, **options)
    torch.manual_seed(11)
    ours = getattr(rnn, cls_name)(3, 5, 2, bidirectional=True, **options)
    for (name, expected), (_, actual) in zip(reference.named_parameters(),
                                             ours.named_parameters(), strict=True):
        assert torch.equal(actual, expected), name
        assert actual.abs().max() <= 1 / 5**0.5


def test_dropout_between_layers_only_in_training():
    layer = rnn.GRU(3, 8, num_layers=3, dropout=0.5, backend="python")
    x = torch.randn(6, 2, 3)
    layer.eval()
    first, second = layer(x)[0], layer(x)[0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    layer.train()
    torch.manual_seed(0)
    noisy = layer(x)[0]
    assert not torch.allclose(noisy, first)
    single = rnn.GRU(3, 8, num_layers=1, backend="python").train()
    torch.testing.assert_close(single(x)[0], single(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["torch", "python"])
def test_unbatched_input_matches_torch(backend):
    reference, ours = make_pair("LSTM", 3, 4, num_layers=2, bidirectional=True, backend=backend)
    x = torch.randn(5, 3, dtype=torch.float64)
    h0 = torch.randn(4, 4, dtype=torch.float64)
    c0 = torch.randn(4, 4, dtype=torch.float64)
    expected_out, (expected_h, expected_c) = reference(x, (h0, c0))
    actual_out, (actual_h, actual_c) = ours(x, (h0, c0))
    assert actual_out.shape == (5, 8) and actual_h.shape == (4, 4)
    for actual, expected in ((actual_out, expected_out), (actual_h, expected_h),
                             (actual_c, expected_c)):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)


def test_packed_output_has_the_input_layout():
    reference, ours = make_pair("GRU", 2, 3, backend="python")
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, [2, 4, 3], enforce_sorted=False)
    expected, _ = reference(packed)
    actual, _ = ours(packed)
    assert isinstance(actual, torch.nn.utils.rnn.PackedSequence)
    assert torch.equal(actual.batch_sizes, expected.batch_sizes)
    assert torch.equal(actual.sorted_indices, expected.sorted_indices)
    assert torch.equal(actual.unsorted_indices, expected.unsorted_indices)
    torch.testing.assert_close(actual.data, expected.data, rtol=0, atol=1e-12)
