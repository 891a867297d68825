"""Hidden-state helpers: text features and unit-feature correlations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.analysis.hidden import record_states, text_features, unit_correlations
from rnnkit.models import LanguageModel, LanguageModelConfig


def test_text_features_mark_quotes_and_lines():
    text = 'a "b\'s c" d\n(x)'
    features = text_features(text)
    assert features["inside_quotes"].tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert features["newline"].tolist().index(1.0) == 11
    assert features["position_in_line"][12] == 0 and features["position_in_line"][11] == 11
    assert features["inside_brackets"].tolist()[12:] == [1, 1, 1]


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=40))
def test_text_features_have_one_value_per_character(text):
    for values in text_features(text).values():
        assert values.shape == (len(text),)


def test_planted_unit_is_found():
    rng = np.random.default_rng(0)
    feature = (rng.random(200) > 0.5).astype(float)
    states = rng.normal(size=(200, 16)) * 0.5
    states[:, 11] = -feature + rng.normal(size=200) * 0.1
    best = unit_correlations(states, feature, top=2)
    assert best[0].unit == 11 and best[0].correlation < -0.9
    assert abs(best[1].correlation) < 0.3


def test_unit_correlations_check_shapes():
    with pytest.raises(ValueError, match="feature"):
        unit_correlations(np.zeros((5, 3)), np.zeros(4))


def test_record_states_returns_per_layer_states():
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=5, hidden_size=3, embedding_size=2,
                                              num_layers=2))
    tokens = torch.randint(5, (2, 4))
    traces = record_states(model, lambda m: m(tokens))
    assert traces[0].hidden(0).shape == (2, 4, 3) and traces[0].num_layers == 2
    assert not traces[0].hidden(1).requires_grad
