"""Seq2seq decoding paths, teacher forcing and its schedule, the bidirectional bridge."""

from __future__ import annotations

import pytest
import torch
from tests.models.model_factories import pair_batch, seq2seq

from rnnkit.data.batch import IGNORE_INDEX
from rnnkit.models import TeacherForcingSchedule


@pytest.mark.parametrize("attention", ["none", "luong_dot", "luong_general"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_parallel_teacher_forcing_equals_stepwise_decoding(attention, cell):
    torch.manual_seed(0)
    model = seq2seq(cell, attention, num_layers=2).eval()
    batch = pair_batch([3, 5, 2], [4, 6, 3])
    inputs = batch.target[:, :-1]
    parallel_logits, parallel_weights = model(batch.source, batch.source_lengths, inputs)
    memory, state = model.encode(batch.source, batch.source_lengths)
    step_logits, step_weights = model._decode_stepwise(inputs, state, memory, 1.0)
    torch.testing.assert_close(parallel_logits, step_logits)
    if attention != "none":
        torch.testing.assert_close(parallel_weights, step_weights)


def test_loss_ignores_target_padding():
    torch.manual_seed(0)
    model = seq2seq("gru", "bahdanau").eval()
    batch = pair_batch([3, 4], [3, 5])
    loss = model.loss(batch)
    batch.target[0, 3:] = 7  # garbage after the first row's EOS
    torch.testing.assert_close(model.loss(batch), loss)
    logits, _ = model(batch.source, batch.source_lengths, batch.target[:, :-1])
    targets = batch.target[:, 1:].clone()
    targets[0, 2:] = IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_teacher_forcing_ratio_applies_only_in_training():
    torch.manual_seed(0)
    model = seq2seq("gru", "luong_general", teacher_forcing_start=0.0, teacher_forcing_floor=0.0)
    batch = pair_batch([4, 4, 4], [6, 6, 6])
    assert model.teacher_forcing_ratio == 0.0
    model.eval()
    forced = model.loss(batch)
    model.train()
    torch.manual_seed(1)
    free_running = model.loss(batch)  # dropout is 0: only the fed-back tokens differ
    assert not torch.allclose(forced, free_running)
    model.teacher_forcing_ratio = 1.0
    torch.testing.assert_close(model.loss(batch), forced)


def test_schedule_decays_linearly_to_the_floor():
    schedule = TeacherForcingSchedule(start=1.0, floor=0.25, decay_steps=100)
    assert [schedule.ratio(s) for s in (0, 50, 100, 1000)] == [1.0, 0.625, 0.25, 0.25]
    assert TeacherForcingSchedule(start=0.7).ratio(10**6) == 0.7
    model = seq2seq(
        teacher_forcing_start=1.0, teacher_forcing_floor=0.5, teacher_forcing_decay_steps=10
    )
    model.set_training_step(5)
    assert model.teacher_forcing_ratio == 0.75


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start": 1.5}, r"start: expected a probability in \[0, 1\]"),
        ({"decay_steps": -1}, "decay_steps: expected an integer >= 0"),
    ],
)
def test_schedule_validation(arguments, message):
    with pytest.raises(ValueError, match=message):
        TeacherForcingSchedule(**arguments)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_bridge_maps_both_directions_per_layer(cell):
    torch.manual_seed(0)
    model = seq2seq(cell, "none", num_layers=2, bidirectional=True)
    batch = pair_batch([3, 5], [3, 3])
    _, encoder_state = model.encoder(batch.source, batch.source_lengths)
    _, decoder_state = model.encode(batch.source, batch.source_lengths)
    h_encoder = encoder_state[0] if cell == "lstm" else encoder_state  # (4, 2, hidden)
    h_decoder = decoder_state[0] if cell == "lstm" else decoder_state  # (2, 2, hidden)
    assert h_decoder.shape == (2, 2, 10)
    joined = torch.cat([h_encoder[2], h_encoder[3]], dim=-1)  # top layer: forward, reverse
    torch.testing.assert_close(h_decoder[1], torch.tanh(model.bridge.hidden(joined)))


def test_unidirectional_encoder_state_passes_straight_through():
    torch.manual_seed(0)
    model = seq2seq("gru", "bahdanau", bidirectional=False)
    batch = pair_batch([3, 5], [3, 3])
    _, encoder_state = model.encoder(batch.source, batch.source_lengths)
    _, decoder_state = model.encode(batch.source, batch.source_lengths)
    assert model.bridge is None and torch.equal(encoder_state, decoder_state)


def test_decoded_output_has_no_bos_or_eos_and_is_padded():
    torch.manual_seed(0)
    model = seq2seq()
    batch = pair_batch([4, 2, 3], [3, 3, 3])
    decoded = model.greedy_decode(batch.source, batch.source_lengths, max_length=7)
    for row, length in enumerate(decoded.lengths.tolist()):
        assert 1 not in decoded.tokens[row, :length].tolist()
        assert 2 not in decoded.tokens[row, :length].tolist()
        assert bool((decoded.tokens[row, length:] == 0).all())
