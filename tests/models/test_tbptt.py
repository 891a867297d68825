"""Truncated BPTT carries the state across consecutive chunks, detached."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.models.model_factories import language_model

from rnnkit.data.batch import TokenBatch
from rnnkit.models import TruncatedBPTTLoss


def _stream(batch: int = 3, length: int = 13):
    torch.manual_seed(0)
    return torch.randint(0, 11, (batch, length + 1))


def _chunk(stream, start, stop):
    tokens, targets = stream[:, start:stop], stream[:, start + 1 : stop + 1]
    return TokenBatch(tokens, torch.full((len(stream),), stop - start), targets)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_carried_state_equals_running_the_concatenated_sequence(cell):
    model = language_model(cell, num_layers=2).eval()
    stream = _stream()
    tbptt = TruncatedBPTTLoss()
    losses = [tbptt(model, _chunk(stream, a, b)) for a, b in [(0, 5), (5, 9), (9, 13)]]
    full_logits, _ = model(stream[:, :13])
    targets = stream[:, 1:]
    for loss, (a, b) in zip(losses, [(0, 5), (5, 9), (9, 13)], strict=True):
        expected = F.cross_entropy(full_logits[:, a:b].reshape(-1, 11), targets[:, a:b].reshape(-1))
        torch.testing.assert_close(loss, expected)


def test_state_is_detached_so_the_graph_does_not_grow():
    model = language_model("lstm")
    stream = _stream(length=40)
    tbptt = TruncatedBPTTLoss()
    for start in range(0, 40, 5):
        loss = tbptt(model, _chunk(stream, start, start + 5))
        assert all(part.grad_fn is None and not part.requires_grad for part in tbptt.state)
        loss.backward()  # would fail on a second pass through a freed earlier graph
        model.zero_grad()


def test_gradients_stop_at_the_chunk_boundary():
    model = language_model("gru").eval()
    stream = _stream()
    tbptt = TruncatedBPTTLoss()
    tbptt(model, _chunk(stream, 0, 5))
    state = tbptt.state.clone().requires_grad_(True)
    tbptt.state = state
    tbptt(model, _chunk(stream, 5, 9)).backward()
    assert state.grad is not None and float(state.grad.abs().sum()) > 0  # flows to the boundary
    assert tbptt.state.grad_fn is None


def test_state_dict_round_trip_gives_the_same_next_loss():
    model = language_model("lstm").eval()
    stream = _stream()
    first = TruncatedBPTTLoss()
    first(model, _chunk(stream, 0, 6))
    saved = first.state_dict()
    assert set(saved) == {"h", "c"} and all(isinstance(v, torch.Tensor) for v in saved.values())
    resumed = TruncatedBPTTLoss()
    resumed.load_state_dict(saved)
    torch.testing.assert_close(
        resumed(model, _chunk(stream, 6, 12)), first(model, _chunk(stream, 6, 12))
    )


def test_reset_and_batch_size_change_start_from_zeros():
    model = language_model("gru").eval()
    stream = _stream()
    fresh = TruncatedBPTTLoss()(model, _chunk(stream, 5, 9))
    tbptt = TruncatedBPTTLoss()
    tbptt(model, _chunk(stream, 0, 5))
    assert not torch.allclose(tbptt(model, _chunk(stream, 5, 9)), fresh)
    tbptt.reset()
    assert tbptt.state_dict() == {}
    torch.testing.assert_close(tbptt(model, _chunk(stream, 5, 9)), fresh)
    smaller = _chunk(stream[:2], 9, 13)
    torch.testing.assert_close(tbptt(model, smaller), TruncatedBPTTLoss()(model, smaller))


def test_load_state_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="state_dict: expected keys 'h' and optionally 'c'"):
        TruncatedBPTTLoss().load_state_dict({"hidden": torch.zeros(1)})
