"""PackedSequence input on the native engine runs in the packed layout (no padded block) and
gives torch.nn's packed results: outputs, final states and gradients."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import rnnkit.nn as rnn
from rnnkit.nn import base as nn_base
from rnnkit.nn.sequence import packed_places

from .helpers import as_tuple, make_pair, outputs_and_grads

pytestmark = pytest.mark.skipif(rnn.backend.native_engine() is None,
                                reason="native engine not compiled")

CASES = [
    # kind, layers, bidirectional, proj_size, lengths
    ("LSTM", 1, False, 0, [7, 3, 5, 1, 7, 2]),
    ("LSTM", 2, True, 0, [5, 1, 4, 4, 2]),
    ("LSTM", 2, True, 3, [6, 2, 1, 6, 3]),
    ("LSTM", 1, False, 2, [4, 4, 4]),
    ("GRU", 3, False, 0, [8, 1, 1, 5, 3, 2, 8]),
    ("GRU", 2, True, 0, [3, 5, 1, 2]),
    ("RNN_TANH", 2, True, 0, [6, 6, 6, 6]),
    ("RNN_RELU", 1, True, 0, [1, 4, 2]),
    ("GRU", 1, False, 0, [1]),
]


@pytest.fixture
def no_padding(monkeypatch):
    """Fail if the layer unpacks the input into a padded block or packs a padded output."""
    def refuse(*args, **kwargs):
        raise AssertionError("the packed layout must not pad or repack")
    for name in ("unpack", "unpack_longest_first", "pack_longest_first", "repack_like"):
        monkeypatch.setattr(nn_base, name, refuse)


def build(kind, layers, bidirectional, proj, dtype=torch.float64):
    options = dict(num_layers=layers, bidirectional=bidirectional, dtype=dtype,
                   backend="native")
    if proj:
        options["proj_size"] = proj
    return make_pair(kind, 3, 5, **options)


def packed_input(lengths, enforce_sorted, dtype=torch.float64, seed=3):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(max(lengths), len(lengths), 3, generator=generator, dtype=dtype)
    if enforce_sorted:
        lengths = sorted(lengths, reverse=True)
    return pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=enforce_sorted)


def random_state(layer, batch, dtype=torch.float64, seed=4):
    generator = torch.Generator().manual_seed(seed)
    stacked = layer.num_layers * (2 if layer.bidirectional else 1)
    h0 = torch.randn(stacked, batch, layer.proj_size or layer.hidden_size, generator=generator,
                     dtype=dtype)
    if layer.mode != "LSTM":
        return h0
    return h0, torch.randn(stacked, batch, layer.hidden_size, generator=generator, dtype=dtype)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-p{c[3]}")
@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_packed_inference_matches_torch(case, enforce_sorted, with_state, no_padding):
    kind, layers, bidirectional, proj, lengths = case
    reference, ours = build(kind, layers, bidirectional, proj)
    packed = packed_input(lengths, enforce_sorted)
    hx = random_state(ours, len(lengths)) if with_state else None
    with torch.no_grad():
        expected, expected_state = reference(packed, hx)
        actual, actual_state = ours(packed, hx)
    assert isinstance(actual, PackedSequence)
    assert torch.equal(actual.batch_sizes, expected.batch_sizes)
    for index in ("sorted_indices", "unsorted_indices"):
        a, e = getattr(actual, index), getattr(expected, index)
        assert (a is None and e is None) or torch.equal(a, e)
    torch.testing.assert_close(actual.data, expected.data, rtol=1e-10, atol=1e-10)
    for a, e in zip(as_tuple(actual_state), as_tuple(expected_state), strict=True):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-p{c[3]}")
def test_packed_training_matches_torch(case, no_padding):
    kind, layers, bidirectional, proj, lengths = case
    reference, ours = build(kind, layers, bidirectional, proj)
    results = []
    for layer in (reference, ours):
        packed = packed_input(lengths, enforce_sorted=False)
        data = packed.data.clone().requires_grad_(True)
        hx = tuple(t.requires_grad_(True) for t in as_tuple(random_state(layer, len(lengths))))
        output, state = layer(PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                                             packed.unsorted_indices),
                              hx if kind == "LSTM" else hx[0])
        generator = torch.Generator().manual_seed(9)
        loss = (output.data * torch.randn(output.data.shape, generator=generator,
                                          dtype=output.data.dtype)).sum()
        for tensor in as_tuple(state):
            loss = loss + (tensor * torch.randn(tensor.shape, generator=generator,
                                                dtype=tensor.dtype)).sum()
        params = [p for _, p in sorted(layer.named_parameters())]
        results.append([output.data, *as_tuple(state),
                        *torch.autograd.grad(loss, [data, *hx, *params])])
    for a, e in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-9)


def test_packed_output_pads_like_torch_float32():
    reference, ours = build("LSTM", 2, True, 0, dtype=torch.float32)
    packed = packed_input([9, 2, 5, 1, 9, 3], enforce_sorted=False, dtype=torch.float32)
    with torch.no_grad():
        expected, _ = pad_packed_sequence(reference(packed)[0])
        actual, _ = pad_packed_sequence(ours(packed)[0])
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH"])
def test_packed_bits_equal_across_thread_counts(kind):
    _, ours = build(kind, 2, True, 0, dtype=torch.float32)
    lengths = [30, 1, 17, 17, 4, 30, 9, 1, 2, 25, 11, 6]
    packed = packed_input(lengths, enforce_sorted=False, dtype=torch.float32)
    previous = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                output, state = ours(packed)
            results.append([output.data, *as_tuple(state)])
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_packed_path_falls_back_for_python_backend(monkeypatch):
    """Another backend keeps the padded route (and its results)."""
    reference, ours = make_pair("GRU", 3, 5, backend="python")
    packed = packed_input([4, 2, 3], enforce_sorted=False)
    calls = []
    original = nn_base.unpack_longest_first

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    monkeypatch.setattr(nn_base, "unpack_longest_first", counting)
    with torch.no_grad():
        actual, _ = ours(packed)
        expected, _ = reference(packed)
    assert calls
    torch.testing.assert_close(actual.data, expected.data)


@pytest.mark.parametrize("lengths", [[3, 7, 1, 7, 2], [4, 4, 4], [1], [2, 5]])
def test_packed_places_match_pack_padded_sequence(lengths):
    x = torch.randn(max(lengths), len(lengths), 2, generator=torch.Generator().manual_seed(6))
    reference = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    times, rows, batch_sizes, order = packed_places(torch.tensor(lengths))
    assert torch.equal(x[times, rows], reference.data)
    assert torch.equal(batch_sizes, reference.batch_sizes)
    assert torch.equal(order, reference.sorted_indices)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_lengths_with_an_empty_row_keep_the_padded_route(kind):
    reference, ours = build(kind, 2, True, 0)
    x = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    lengths = torch.tensor([5, 0, 2])
    with torch.no_grad():
        output, state = ours(x, lengths=lengths)
        kept = torch.tensor([0, 2])
        expected, expected_state = reference(
            pack_padded_sequence(x[:, kept], lengths[kept], enforce_sorted=False))
    expected, _ = pad_packed_sequence(expected, total_length=5)
    torch.testing.assert_close(output[:, kept], expected)
    assert not output[:, 1].any()
    for a, e in zip(as_tuple(state), as_tuple(expected_state), strict=True):
        torch.testing.assert_close(a[:, kept], e)
        assert not a[:, 1].any()  # zero initial state, untouched


# Equal lengths need no masking: lengths= then runs the dense path.
@pytest.mark.parametrize("case", [c for c in CASES if len(set(c[4])) > 1],
                         ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-p{c[3]}")
def test_lengths_through_the_packed_layout_match_torch(case, monkeypatch):
    kind, layers, bidirectional, proj, lengths = case
    reference, ours = build(kind, layers, bidirectional, proj)
    ours.batch_first = reference.batch_first = True
    calls = []
    original = nn_base.RecurrentBase._run_lengths_packed

    def counting(self, *args):
        calls.append(1)
        return original(self, *args)
    monkeypatch.setattr(nn_base.RecurrentBase, "_run_lengths_packed", counting)
    x = torch.randn(len(lengths), max(lengths), 3, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    hx = random_state(ours, len(lengths))
    expected, expected_grads = outputs_and_grads(reference, x.clone(), hx, lengths=lengths,
                                                 packed=True, batch_first=True)
    actual, actual_grads = outputs_and_grads(ours, x.clone(), hx, lengths=lengths,
                                             batch_first=True)
    assert calls
    for a, e in zip(actual + actual_grads, expected + expected_grads, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-9)
