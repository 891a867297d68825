"""The workspace cache (``rnnkit.engine.workspace``): tensors as asked for, a block reused only
after torch dropped every reference to it, the byte limit, and layers whose results do not
depend on what a reused block held before."""

from __future__ import annotations

import os

import pytest
import torch

from rnnkit import engine
from rnnkit import nn as rnn
from rnnkit.engine import workspace

pytestmark = pytest.mark.skipif(not engine.available(), reason="native engine not compiled")

FLOAT = torch.zeros(1)
BIG = (512, 1024)  # 2 MiB of float32, above MIN_BYTES


@pytest.fixture(autouse=True)
def fresh_cache():
    workspace.set_limit(workspace.DEFAULT_LIMIT_MB)
    workspace.release()
    yield
    workspace.set_limit(workspace.DEFAULT_LIMIT_MB)
    workspace.release()


def test_tensors_have_the_shape_dtype_and_alignment_asked_for():
    for like in (FLOAT, torch.zeros(1, dtype=torch.float64)):
        tensor = workspace.empty(BIG, like)
        assert tensor.shape == BIG and tensor.dtype == like.dtype and tensor.is_contiguous()
        assert tensor.data_ptr() % 64 == 0
        tensor.fill_(3.0)
        assert float(tensor.sum()) == 3.0 * tensor.numel()


def test_small_and_non_float_requests_bypass_the_cache():
    before = workspace.stats()
    small = workspace.empty((16, 16), FLOAT)
    ints = workspace.empty(BIG, torch.zeros(1, dtype=torch.int64))
    assert ints.dtype == torch.int64 and small.shape == (16, 16)
    after = workspace.stats()
    assert (after.hits, after.misses) == (before.hits, before.misses)


def test_a_block_is_reused_only_after_its_last_reference_is_gone():
    first = workspace.empty(BIG, FLOAT)
    address = first.data_ptr()
    view = first[1:]
    del first
    assert workspace.stats().cached_blocks == 0  # the view still holds the block
    second = workspace.empty(BIG, FLOAT)
    assert second.data_ptr() != address
    del view
    assert workspace.stats().cached_blocks == 1
    third = workspace.empty(BIG, FLOAT)
    assert third.data_ptr() == address


def test_zeros_clears_a_dirty_block():
    dirty = workspace.empty(BIG, FLOAT)
    dirty.fill_(float("nan"))
    del dirty
    hits = workspace.stats().hits
    clean = workspace.zeros(BIG, FLOAT)
    assert workspace.stats().hits == hits + 1
    assert torch.count_nonzero(clean) == 0


def test_a_block_serves_requests_down_to_half_its_size():
    block = workspace.empty(BIG, FLOAT)
    del block
    hits = workspace.stats().hits
    too_small = workspace.empty((200, 1024), FLOAT)  # under half: served by the system
    assert workspace.stats().hits == hits
    smaller = workspace.empty((300, 1024), FLOAT)
    assert workspace.stats().hits == hits + 1 and smaller.shape == (300, 1024)
    del too_small


def test_the_limit_bounds_the_cached_bytes_least_recent_first():
    workspace.set_limit(5)  # megabytes: two 2 MiB blocks fit, three do not
    first, second, third = (workspace.empty(BIG, FLOAT) for _ in range(3))
    addresses = [first.data_ptr(), second.data_ptr(), third.data_ptr()]
    del first, second, third  # released in this order: the first one is evicted
    held = workspace.stats()
    assert held.cached_blocks == 2 and held.cached_bytes == 2 * 2 * 1024 * 1024
    newest, older = workspace.empty(BIG, FLOAT), workspace.empty(BIG, FLOAT)
    assert (newest.data_ptr(), older.data_ptr()) == (addresses[2], addresses[1])
    del newest, older
    workspace.set_limit(0)
    assert workspace.stats().cached_bytes == 0
    released = workspace.empty(BIG, FLOAT)
    del released
    assert workspace.stats().cached_blocks == 0


def test_release_empties_the_cache_and_keeps_the_limit():
    workspace.set_limit(64)
    del_me = workspace.empty(BIG, FLOAT)
    del del_me
    assert workspace.stats().cached_blocks == 1
    workspace.release()
    stats = workspace.stats()
    assert stats.cached_blocks == 0 and stats.limit_bytes == 64 * 1024 * 1024


@pytest.mark.parametrize("value", ["-1", "lots", "nan"])
def test_a_bad_limit_in_the_environment_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(workspace.LIMIT_ENV, value)
    with pytest.raises(ValueError, match=f"{workspace.LIMIT_ENV}: expected a number of "
                                         f"megabytes >= 0, got '{value}'"):
        workspace._limit_from_environment()


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv(workspace.LIMIT_ENV, "0")
    assert workspace._limit_from_environment() == 0
    monkeypatch.setenv(workspace.LIMIT_ENV, "1.5")
    assert workspace._limit_from_environment() == 3 * 512 * 1024
    monkeypatch.delenv(workspace.LIMIT_ENV)
    assert workspace._limit_from_environment() == workspace.DEFAULT_LIMIT_MB * 1024 * 1024


@pytest.mark.parametrize("value, error", [(-1, ValueError), ("8", TypeError), (True, TypeError)])
def test_set_limit_refuses_what_is_not_megabytes(value, error):
    with pytest.raises(error, match="megabytes: expected"):
        workspace.set_limit(value)


def _poison_cache(sizes: list[tuple[int, ...]]):
    """Leave NaN-filled blocks of these sizes in the cache."""
    blocks = [workspace.empty(size, FLOAT) for size in sizes]
    for block in blocks:
        block.fill_(float("nan"))
    blocks.clear()


def _train_step(cell: str, lengths: torch.Tensor | None, packed: bool):
    torch.manual_seed(0)
    layer = getattr(rnn, cell)(32, 256, num_layers=2, backend="native")
    x = torch.randn(40, 32, 32, requires_grad=True)
    if packed:
        sequence = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        output = layer(sequence)[0].data
    elif lengths is None:
        output, _ = layer(x)
    else:
        output, _ = layer(x, lengths=lengths)
    output.square().sum().backward()
    return [output.detach(), x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("inputs", ["padded", "lengths", "packed"])
def test_layers_give_the_same_bits_on_dirty_reused_blocks(cell, inputs):
    """Every buffer the cache hands out (input projection, saved gates, gate gradients) is
    written before it is read: blocks left full of NaN change no bit."""
    lengths = torch.randint(1, 41, (32,), generator=torch.Generator().manual_seed(1))
    lengths = None if inputs == "padded" else lengths
    workspace.set_limit(0)
    reference = _train_step(cell, lengths, inputs == "packed")
    workspace.set_limit(workspace.DEFAULT_LIMIT_MB)
    gates = 4 if cell == "LSTM" else 3
    rows = int(lengths.sum()) if inputs == "packed" else 40 * 32
    _poison_cache([(rows, gates * 256)] * 4 + [(rows, 256)] * 4)
    got = _train_step(cell, lengths, inputs == "packed")
    assert workspace.stats().hits > 0
    for expected, actual in zip(reference, got, strict=True):
        assert torch.equal(expected, actual)


def test_a_forked_child_can_use_the_cache():
    held = workspace.empty(BIG, FLOAT)
    del held  # the child inherits a cached block and the cache's lock
    pid = os.fork()
    if pid == 0:  # no torch kernels here: OpenMP's team does not survive a fork
        try:
            clean = workspace.zeros(BIG, FLOAT).numpy()
            os._exit(0 if not clean.any() else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_int8_layers_take_their_projection_from_the_cache_and_write_all_of_it(cell):
    """The int8 whole-sequence kernel's projection (seq x batch x gates x hidden floats) is a
    cached block in C: a dirty one changes no bit, and a second call reuses the first's."""
    torch.manual_seed(0)
    layer = rnn.quantize_int8(getattr(rnn, cell)(64, 256, backend="native").eval())
    x = torch.randn(40, 32, 64)
    with torch.no_grad():
        workspace.set_limit(0)
        expected = layer(x)[0]
        workspace.set_limit(workspace.DEFAULT_LIMIT_MB)
        gates = 4 if cell == "LSTM" else 3
        _poison_cache([(40 * 32 * gates * 256 + 32,)] * 2)
        hits = workspace.stats().hits
        first = layer(x)[0]
        second = layer(x)[0]
    assert workspace.stats().hits >= hits + 2
    assert torch.equal(first, expected) and torch.equal(second, expected)
