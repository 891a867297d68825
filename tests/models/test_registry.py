"""Rebuilding models from JSON configs: validation errors name the key and suggest a fix."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from tests.models.model_factories import (
    classifier,
    conditional_generator,
    forecaster,
    language_model,
    seq2seq,
    tagger,
)

from rnnkit.models import (
    MODEL_TYPES,
    ForecasterConfig,
    LanguageModelConfig,
    Seq2SeqConfig,
    build_model,
)


def test_every_model_type_round_trips_through_json():
    models = [
        language_model(),
        classifier(),
        tagger(),
        seq2seq(),
        forecaster(),
        conditional_generator(),
    ]
    assert sorted(m.model_type for m in models) == sorted(MODEL_TYPES)
    for model in models:
        config = json.loads(json.dumps(asdict(model.config)))
        rebuilt = build_model(model.model_type, config)
        assert type(rebuilt) is type(model) and rebuilt.config == model.config


LM = {"vocab_size": 5}
S2S = {"source_vocab_size": 5, "target_vocab_size": 5, "bos_id": 1, "eos_id": 2}
CLASSIFIER = {"vocab_size": 5, "num_classes": 2}
CASES = [
    ("languag_model", {}, ValueError,
     r"model_type: expected one of .* got 'languag_model' \(did you mean 'language_model'\?\)"),
    (3, {}, TypeError, "model_type: expected a str, got int"),
    ("language_model", [], TypeError, "LanguageModelConfig: expected a dict of settings, got list"),
    ("language_model", LM | {"hiden_size": 8}, ValueError,
     r"unknown key 'hiden_size' \(did you mean 'hidden_size'\?\)"),
    ("language_model", {"hidden_size": 8}, ValueError,
     r"LanguageModelConfig: missing required key\(s\) vocab_size"),
    ("language_model", LM | {"cell": "lstmm"}, ValueError,
     r"LanguageModelConfig.cell: expected one of 'rnn', 'lstm', 'gru', got 'lstmm' "
     r"\(did you mean 'lstm'\?\)"),
    ("language_model", {"vocab_size": "5"}, TypeError,
     r"LanguageModelConfig.vocab_size: expected int, got '5' \(str\)"),
    ("language_model", {"vocab_size": True}, TypeError,
     r"LanguageModelConfig.vocab_size: expected int, got True \(bool\)"),
    ("language_model", {"vocab_size": 0}, ValueError,
     "LanguageModelConfig.vocab_size: expected an integer >= 1, got 0"),
    ("language_model", LM | {"dropout": 1.0}, ValueError,
     r"LanguageModelConfig.dropout: expected a probability in \[0, 1\), got 1.0"),
    ("language_model", LM | {"cell": "rnn", "zoneout": 0.1}, ValueError,
     "zoneout: expected 0 for cell='rnn'"),
    ("sequence_classifier", CLASSIFIER | {"num_classes": 1}, ValueError,
     "num_classes: expected an integer >= 2, got 1"),
    ("sequence_classifier", CLASSIFIER | {"pooling": "avg"}, ValueError,
     "pooling: expected one of 'last', 'mean', 'max', got 'avg'"),
    ("seq2seq", S2S | {"eos_id": 9}, ValueError,
     r"Seq2SeqConfig.eos_id: expected an id in \[0, target_vocab_size=5\), got 9"),
    ("seq2seq", S2S | {"attention": "bahdanu"}, ValueError, "did you mean 'bahdanau'"),
    ("seq2seq", S2S | {"teacher_forcing_floor": 2.0}, ValueError,
     r"floor: expected a probability in \[0, 1\]"),
    ("forecaster", {"input_size": 2, "mean": [0.0]}, ValueError,
     "ForecasterConfig.mean: expected None or a list of input_size=2 numbers"),
    ("forecaster", {"input_size": 2, "mean": [0.0, 1.0], "std": [1.0, 0.0]}, ValueError,
     "ForecasterConfig.std: expected positive numbers"),
    ("forecaster", {"input_size": 2, "mean": [0.0, "a"], "std": [1.0, 1.0]}, TypeError,
     r"ForecasterConfig.mean: expected list\[float\] \| None, got \[0.0, 'a'\]"),
    ("forecaster", {"input_size": 2, "target_indices": [0], "strategy": "autoregressive"},
     ValueError, r"target_indices: expected None \(every feature a target\) for strategy="),
    ("forecaster", {"input_size": 2, "target_indices": [2]}, ValueError,
     r"target_indices: expected None or distinct feature indices in \[0, 2\)"),
    ("conditional_generator", {"vocab_size": 5, "bos_id": 1, "eos_id": 2}, ValueError,
     "num_conditions: expected an integer >= 1 for condition_type='class'"),
]  # fmt: skip


@pytest.mark.parametrize(("model_type", "config", "error", "message"), CASES)
def test_config_errors_name_the_key(model_type, config, error, message):
    with pytest.raises(error, match=message):
        build_model(model_type, config)


def test_tied_embeddings_need_matching_sizes():
    message = "tie_embeddings: needs the recurrent output size to equal embedding_size=16, got "
    with pytest.raises(ValueError, match=message + "hidden_size=32"):
        LanguageModelConfig(vocab_size=5, embedding_size=16, hidden_size=32, tie_embeddings=True)
    with pytest.raises(ValueError, match="got proj_size=8"):
        LanguageModelConfig(
            vocab_size=5, embedding_size=16, hidden_size=32, proj_size=8, tie_embeddings=True
        )
    config = LanguageModelConfig(
        vocab_size=5, embedding_size=16, hidden_size=32, proj_size=16, tie_embeddings=True
    )
    assert config.output_size == 16
    with pytest.raises(ValueError, match="proj_size: expected 0, or for cell='lstm'"):
        LanguageModelConfig(vocab_size=5, cell="gru", proj_size=4)


def test_ints_are_accepted_for_floats_and_stored_as_floats():
    config = ForecasterConfig(input_size=1, dropout=0, mean=[1], std=[2])
    assert isinstance(config.dropout, float)
    assert (
        Seq2SeqConfig(
            source_vocab_size=4, target_vocab_size=4, bos_id=1, eos_id=2, teacher_forcing_start=1
        ).teacher_forcing_start
        == 1.0
    )


def test_model_constructors_check_the_config_type():
    from rnnkit.models import SequenceTagger

    with pytest.raises(TypeError, match="config: expected SequenceTaggerConfig, got dict"):
        SequenceTagger({"vocab_size": 3, "num_tags": 2})
