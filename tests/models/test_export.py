"""ONNX/TorchScript export of every model shape, checked against PyTorch on two input sizes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rnnkit.models import build_model
from rnnkit.models.crf import FORBIDDEN
from rnnkit.models.export import export_model
from rnnkit.models.export_graphs import graphs_for

TOKENS = {"vocab_size": 20, "embedding_size": 4, "hidden_size": 8}
MODELS = {
    "lm": ("language_model", {**TOKENS, "num_layers": 2}),
    "tagger-rnn": ("sequence_tagger", {**TOKENS, "num_tags": 5, "cell": "rnn"}),
    "generator": ("conditional_generator", {**TOKENS, "bos_id": 2, "eos_id": 3,
                                            "num_conditions": 4, "cell": "gru"}),
    "forecaster": ("forecaster", {"input_size": 2, "horizon": 3, "hidden_size": 8,
                                  "gaussian": True, "mean": [1.0, -2.0], "std": [2.0, 0.5]}),
    # Each horizon step read from its own encoder output, both directions.
    "forecaster-per-step": ("forecaster", {"input_size": 2, "horizon": 3, "hidden_size": 8,
                                           "gaussian": True, "head": "per_step",
                                           "bidirectional": True, "mean": [1.0, -2.0],
                                           "std": [2.0, 0.5]}),
    "seq2seq-luong": ("seq2seq", {"source_vocab_size": 15, "target_vocab_size": 12, "bos_id": 2,
                                  "eos_id": 3, "hidden_size": 8, "embedding_size": 4,
                                  "attention": "luong_dot", "cell": "lstm",
                                  "bidirectional": False}),
    # No attention: the decoder never reads the encoder outputs, so no memory inputs.
    "seq2seq-none": ("seq2seq", {"source_vocab_size": 15, "target_vocab_size": 12, "bos_id": 2,
                                 "eos_id": 3, "hidden_size": 8, "embedding_size": 4,
                                 "attention": "none", "cell": "lstm", "bidirectional": True}),
    "forecaster-quantile": ("forecaster", {"input_size": 2, "horizon": 3, "hidden_size": 8,
                                           "likelihood": "quantile",
                                           "quantiles": [0.1, 0.5, 0.9],
                                           "strategy": "autoregressive", "mean": [1.0, -2.0],
                                           "std": [2.0, 0.5]}),
}


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_classifier_exports_with_every_pooling(tmp_path, pooling, cell, bidirectional):
    torch.manual_seed(0)
    model = build_model("sequence_classifier", {**TOKENS, "num_classes": 3, "pooling": pooling,
                                                "cell": cell, "bidirectional": bidirectional})
    report = export_model(model, tmp_path / "m.onnx", "onnx")
    assert len(report.max_abs_diff) == 2 and max(report.max_abs_diff.values()) < 1e-5


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_every_model_exports(tmp_path, name, fmt):
    torch.manual_seed(0)
    model = build_model(*MODELS[name])
    report = export_model(model, tmp_path / f"m.{fmt}", fmt)
    graphs = 2 if name.startswith("seq2seq") else 1
    assert len(report.files) == graphs and all(f.stat().st_size > 0 for f in report.files)
    assert len(report.max_abs_diff) == 2 * graphs
    assert max(report.max_abs_diff.values()) < 1e-4


def test_layer_norm_is_named_as_the_blocker(tmp_path):
    model = build_model("sequence_classifier", {**TOKENS, "num_classes": 3, "layer_norm": True})
    with pytest.raises(ValueError, match="layer_norm"):
        export_model(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("options, option", [
    ({"future_size": 1}, "model.future_size=1"),
    ({"static_size": 2}, "model.static_size=2"),
])
def test_forecaster_covariates_are_refused_naming_the_option(tmp_path, options, option):
    model = build_model("forecaster", {"input_size": 2, "horizon": 3, "hidden_size": 8, **options})
    with pytest.raises(ValueError, match=f"export: {option} \\(covariates\\)"):
        export_model(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("char_features", ["cnn", "lstm"])
@pytest.mark.parametrize("crf", [False, True])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_tagger_with_char_features_exports_them_as_an_input(tmp_path, char_features, crf, fmt):
    torch.manual_seed(0)
    model = build_model("sequence_tagger", {**TOKENS, "num_tags": 5, "num_chars": 10,
                                            "char_features": char_features, "crf": crf})
    report = export_model(model, tmp_path / f"m.{fmt}", fmt)
    assert report.files == [tmp_path / f"m.{fmt}"] and max(report.max_abs_diff.values()) < 1e-5


def test_exported_char_inputs_are_padded_as_the_task_pads_them():
    model = build_model("sequence_tagger", {**TOKENS, "num_tags": 5, "num_chars": 10,
                                            "char_features": "cnn"})
    [graph] = graphs_for(model)
    _, lengths, chars = graph.inputs(5, 13, 5)
    assert chars.shape == (5, 13, 7) and graph.signature.inputs == ("tokens", "lengths", "chars")
    real_words = torch.arange(13) < lengths.unsqueeze(1)
    assert bool((chars[..., 0] > 0).eq(real_words).all())  # a real word has >= 1 character
    word_lengths = (chars > 0).sum(dim=2)
    assert bool((chars > 0).eq(torch.arange(7) < word_lengths.unsqueeze(2)).all())  # then pads
    assert len(set(word_lengths[real_words].tolist())) > 1


def test_a_crf_tagger_exports_its_emission_scores_and_crf_scores(tmp_path):
    import onnxruntime

    torch.manual_seed(0)
    model = build_model("sequence_tagger", {**TOKENS, "num_tags": 5, "crf": True,
                                            "forbidden_transitions": [[0, 1], [5, 2], [3, 6]]})
    report = export_model(model, tmp_path / "m.onnx")
    assert report.files == [tmp_path / "m.onnx"] and max(report.max_abs_diff.values()) < 1e-5
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"),
                                           providers=["CPUExecutionProvider"])
    tokens = torch.tensor([[1, 2, 3]])
    logits, transitions, start, end = session.run(
        None, {"tokens": tokens.numpy(), "lengths": torch.tensor([3]).numpy()})
    assert logits.shape == (1, 3, 5)
    expected = [score.detach().numpy() for score in model.crf.scores()]
    for got, want in zip((transitions, start, end), expected, strict=True):
        assert got.shape == want.shape and abs(got - want).max() < 1e-6
    assert transitions[0, 1] == start[2] == end[3] == FORBIDDEN


def _session(path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_a_seq2seq_without_attention_decodes_from_its_state_alone(tmp_path):
    torch.manual_seed(0)
    model = build_model(*MODELS["seq2seq-none"]).eval()
    report = export_model(model, tmp_path / "m.onnx")
    encoder, step = (_session(path) for path in report.files)
    assert [i.name for i in encoder.get_outputs()] == ["h", "c"]
    assert [i.name for i in step.get_inputs()] == ["previous", "h", "c"]
    source = torch.tensor([[4, 5, 6, 7], [8, 9, 1, 0]])
    lengths = torch.tensor([4, 3])
    h, c = encoder.run(None, {"source": source.numpy(), "source_lengths": lengths.numpy()})
    previous = torch.tensor([2, 2])
    with torch.no_grad():
        _, state = model.encode(source, lengths)
        for _ in range(3):  # greedy steps in ONNX Runtime follow the model's own
            logits, next_h, next_c = step.run(None, {"previous": previous.numpy(), "h": h,
                                                     "c": c})
            want, state, _ = model.decode_step(previous, state, None)
            assert abs(logits - want.numpy()).max() < 1e-5
            previous, h, c = torch.from_numpy(logits).argmax(-1), next_h, next_c


def test_a_quantile_forecaster_exports_every_level_in_original_units(tmp_path):
    torch.manual_seed(0)
    model = build_model(*MODELS["forecaster-quantile"]).eval()
    report = export_model(model, tmp_path / "m.onnx")
    assert max(report.max_abs_diff.values()) < 1e-4
    history = torch.randn(5, 9, 2) * 2.0 + 1.0
    mean, quantiles = _session(tmp_path / "m.onnx").run(None, {"history": history.numpy()})
    assert mean.shape == (5, 3, 2) and quantiles.shape == (5, 3, 2, 3)
    with torch.no_grad():
        distribution = model.predictive(model.raw_outputs(model.scale(history)))
        for index, level in enumerate([0.1, 0.5, 0.9]):
            want = model.unscale_targets(distribution.icdf(level)).numpy()
            assert abs(quantiles[..., index] - want).max() < 1e-5
    assert abs(quantiles[..., 1] - mean).max() < 1e-5  # the point forecast is the median


@pytest.mark.parametrize(("strategy", "likelihood"), [("direct", "gaussian"),
                                                      ("autoregressive", "student_t")])
def test_a_seasonal_naive_residual_exports_for_any_lookback(tmp_path, strategy, likelihood):
    """The graph adds the seasonal-naive forecast (sliced from the end of any lookback, and for
    autoregressive steps past a season from the values fed back) to a trained-looking head."""
    torch.manual_seed(0)
    model = build_model("forecaster", {"input_size": 2, "horizon": 7, "hidden_size": 8,
                                       "likelihood": likelihood, "strategy": strategy,
                                       "residual": "seasonal_naive", "season": 3,
                                       "mean": [1.0, -2.0], "std": [2.0, 0.5]})
    with torch.no_grad():  # the head starts at zero: give it weights, or only the baseline shows
        model.head.weight.normal_(0.0, 0.3)
        model.head.bias.normal_(0.0, 0.3)
    report = export_model(model, tmp_path / "m.onnx", "onnx")
    assert max(report.max_abs_diff.values()) < 1e-4
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    history = torch.randn(2, 5, 2) * torch.tensor([2.0, 0.5]) + torch.tensor([1.0, -2.0])
    got = session.run(None, {"history": history.numpy()})[0]
    np.testing.assert_allclose(got, model.predict(history, intervals=False).mean.numpy(),
                               rtol=1e-5, atol=1e-5)
