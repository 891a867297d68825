"""Lecture-style code written for torch.nn runs unchanged with rnnkit.nn swapped in."""

from __future__ import annotations

import pytest
import torch
from torch import nn as torch_nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit.nn as rnnkit_nn

NAMESPACES = [torch_nn, rnnkit_nn]


@pytest.mark.parametrize("rnn_nn", NAMESPACES, ids=["torch", "rnnkit"])
def test_stacked_batch_first_rnn(rnn_nn):
    torch.manual_seed(0)
    rnn = rnn_nn.RNN(input_size=10, hidden_size=20, num_layers=2, batch_first=True)
    x = torch.randn(3, 5, 10)
    h0 = torch.zeros(2, 3, 20)
    output, hn = rnn(x, h0)
    assert output.shape == (3, 5, 20) and hn.shape == (2, 3, 20)
    torch.testing.assert_close(output[:, -1], hn[-1])


@pytest.mark.parametrize("rnn_nn", NAMESPACES, ids=["torch", "rnnkit"])
def test_bidirectional_lstm_and_gru(rnn_nn):
    lstm = rnn_nn.LSTM(input_size=10, hidden_size=20, num_layers=2, bidirectional=True)
    output, (hn, cn) = lstm(torch.randn(5, 3, 10))
    assert output.shape == (5, 3, 40) and hn.shape == (4, 3, 20) and cn.shape == (4, 3, 20)
    gru = rnn_nn.GRU(10, 20, bidirectional=True, batch_first=True)
    output, hn = gru(torch.randn(3, 5, 10))
    forward_last, backward_first = output[:, -1, :20], output[:, 0, 20:]
    torch.testing.assert_close(hn[0], forward_last)
    torch.testing.assert_close(hn[1], backward_first)


@pytest.mark.parametrize("rnn_nn", NAMESPACES, ids=["torch", "rnnkit"])
def test_packed_sequences(rnn_nn):
    padded = torch.randn(3, 4, 8)
    lengths = torch.tensor([4, 2, 3])
    packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
    lstm = rnn_nn.LSTM(8, 16, batch_first=True)
    packed_output, (hn, _) = lstm(packed)
    output, output_lengths = pad_packed_sequence(packed_output, batch_first=True)
    assert output.shape == (3, 4, 16)
    assert output_lengths.tolist() == [4, 2, 3]
    torch.testing.assert_close(output[1, 1], hn[0, 1])


def _classifier_class(rnn_nn):
    class TextClassifier(torch_nn.Module):
        def __init__(self, vocab_size, embed_dim, hidden_dim, num_classes):
            super().__init__()
            self.embedding = torch_nn.Embedding(vocab_size, embed_dim, padding_idx=0)
            self.lstm = rnn_nn.LSTM(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
            self.fc = torch_nn.Linear(hidden_dim * 2, num_classes)

        def forward(self, text, lengths):
            embedded = self.embedding(text)
            packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            _, (hidden, _) = self.lstm(packed)
            hidden = torch.cat((hidden[-2], hidden[-1]), dim=1)
            return self.fc(hidden)

    return TextClassifier


def _char_rnn_class(rnn_nn):
    class CharRNN(torch_nn.Module):
        def __init__(self, vocab_size, hidden_size, num_layers=2):
            super().__init__()
            self.hidden_size, self.num_layers = hidden_size, num_layers
            self.embed = torch_nn.Embedding(vocab_size, hidden_size)
            self.rnn = rnn_nn.GRU(hidden_size, hidden_size, num_layers, batch_first=True)
            self.fc = torch_nn.Linear(hidden_size, vocab_size)

        def forward(self, x, hidden=None):
            out, hidden = self.rnn(self.embed(x), hidden)
            return self.fc(out), hidden

        def init_hidden(self, batch_size):
            return torch.zeros(self.num_layers, batch_size, self.hidden_size)

    return CharRNN


@pytest.mark.parametrize("rnn_nn", NAMESPACES, ids=["torch", "rnnkit"])
def test_classifier_class_learns_the_same_way(rnn_nn):
    text = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    lengths = torch.tensor([3, 2])
    labels = torch.tensor([1, 0])
    results = []
    for namespace in (torch_nn, rnn_nn):
        torch.manual_seed(0)
        model = _classifier_class(namespace)(10, 8, 6, 2)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(30):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(text, lengths), labels)
            loss.backward()
            optimizer.step()
        results.append(loss.item())
    assert results[1] == pytest.approx(results[0], rel=1e-4, abs=1e-6)
    assert results[1] < 0.05


@pytest.mark.parametrize("rnn_nn", NAMESPACES, ids=["torch", "rnnkit"])
def test_char_rnn_class_generates(rnn_nn):
    torch.manual_seed(0)
    model = _char_rnn_class(rnn_nn)(vocab_size=12, hidden_size=16)
    hidden = model.init_hidden(1)
    token = torch.tensor([[1]])
    generated = []
    for _ in range(5):
        logits, hidden = model(token, hidden)
        token = logits[:, -1].argmax(dim=-1, keepdim=True)
        generated.append(int(token))
    assert len(generated) == 5 and hidden.shape == (2, 1, 16)
    model.rnn.flatten_parameters()
