"""save_model → load_model reproduces every model exactly; loading never unpickles."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
from tests.models.model_factories import (
    classifier,
    conditional_generator,
    forecaster,
    language_model,
    padded_tokens,
    pair_batch,
    seq2seq,
    tagger,
)

from rnnkit.models import build_model, describe, load_model, read_description, save_model


def _outputs(model) -> list[torch.Tensor]:
    torch.manual_seed(1)
    tokens, lengths = padded_tokens([4, 2, 5]), torch.tensor([4, 2, 5])
    kind = model.model_type
    if kind == "language_model":
        return [model(tokens, lengths)[0]]
    if kind in ("sequence_classifier", "sequence_tagger"):
        return [model(tokens, lengths)]
    if kind == "seq2seq":
        batch = pair_batch([4, 2, 5], [3, 4, 2])
        logits, weights = model(batch.source, batch.source_lengths, batch.target[:, :-1])
        return [logits, weights, model.beam_decode(batch.source, batch.source_lengths, 3).tokens]
    if kind == "forecaster":
        history = torch.randn(3, 6, 2) * 10 + 5
        forecast = model.predict(history)
        return [forecast.mean, forecast.lower]
    return [model(torch.tensor([0, 2, 1]), tokens, lengths)[0]]


MODELS = {
    "language_model": lambda: language_model("lstm", proj_size=8, tie_embeddings=True),
    "classifier": lambda: classifier("gru", bidirectional=True, pooling="max", num_layers=2),
    "tagger": lambda: tagger("rnn"),
    "seq2seq": lambda: seq2seq("lstm", "bahdanau", num_layers=2),
    "forecaster": lambda: forecaster(gaussian=True, mean=[5.0, 5.0], std=[10.0, 10.0]),
    "conditional_generator": lambda: conditional_generator("lstm", num_layers=2),
}


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_is_exact(name, tmp_path):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    save_model(model, tmp_path / "run")
    loaded = load_model(tmp_path / "run")
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    for expected, actual in zip(_outputs(model), _outputs(loaded), strict=True):
        assert torch.equal(expected, actual)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "model.json",
        "model.safetensors",
    ]


def test_tied_embeddings_stay_tied_and_are_stored_once(tmp_path):
    torch.manual_seed(0)
    model = language_model("gru", hidden_size=8, embedding_size=8, tie_embeddings=True)
    save_model(model, tmp_path)
    stored = safetensors.torch.load_file(tmp_path / "model.safetensors")
    assert ("embedding.weight" in stored) != ("output.weight" in stored)
    loaded = load_model(tmp_path)
    assert loaded.output.weight is loaded.embedding.weight
    assert torch.equal(loaded.embedding.weight, model.embedding.weight)


def test_model_json_describes_the_model(tmp_path):
    model = classifier(num_classes=4)
    save_model(model, tmp_path)
    description = json.loads((tmp_path / "model.json").read_text())
    assert description == describe(model)
    assert description["model_type"] == "sequence_classifier"
    assert description["model_config"]["num_classes"] == 4
    rebuilt = build_model(description["model_type"], description["model_config"])
    assert rebuilt.config == model.config


def test_trainer_checkpoint_with_metadata_json_loads(tmp_path):
    torch.manual_seed(0)
    model = tagger()
    safetensors.torch.save_model(model, str(tmp_path / "model.safetensors"))
    metadata = {"step": 12, "best_metric": 0.5, **describe(model)}
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    loaded = load_model(tmp_path)
    assert torch.equal(_outputs(loaded)[0], _outputs(model.eval())[0])


def test_saving_again_replaces_files_atomically(tmp_path):
    first, second = tagger(), tagger()
    save_model(first, tmp_path)
    save_model(second, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]
    assert torch.equal(load_model(tmp_path).head.weight, second.head.weight)


def test_loading_errors_are_clear(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"expected a model directory with model\.json or metadata\.json"
    ):
        load_model(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"step": 3}))
    with pytest.raises(
        ValueError, match=r"metadata\.json: expected keys 'model_type' and 'model_config'"
    ):
        read_description(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"model\.json: not valid JSON"):
        read_description(tmp_path)
    save_model(tagger(hidden_size=10), tmp_path)
    description = json.loads((tmp_path / "model.json").read_text())
    description["model_config"]["hidden_size"] = 12
    (tmp_path / "model.json").write_text(json.dumps(description))
    with pytest.raises(
        ValueError, match=r"weights do not match the sequence_tagger config: size mismatch"
    ):
        load_model(tmp_path)


def test_weights_file_is_plain_safetensors(tmp_path):
    save_model(language_model(), tmp_path)
    with open(tmp_path / "model.safetensors", "rb") as handle:
        header_length = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_length))
    assert "embedding.weight" in header and header["embedding.weight"]["dtype"] == "F32"
