"""``rnnkit report`` and ``rnnkit export`` on taggers with character features (and a CRF): the
report's samples get each word's characters, the ONNX graph takes them as a ``chars`` input,
and decoding the exported outputs gives the tags ``rnnkit predict`` gives."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tests.cli.conftest import write
from tests.tasks.test_tagging_ner import TEST, TRAIN, write_conll

from rnnkit import tasks
from rnnkit.data.chars import pad_chars
from rnnkit.data.collate import pad_sequences


def viterbi(logits: np.ndarray, length: int, transitions: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> list[int]:
    """Best tag path of one sentence: what a runtime does with a CRF graph's outputs."""
    score, back = start + logits[0], []
    for step in range(1, length):
        candidates = score[:, None] + transitions  # (from, to)
        back.append(candidates.argmax(axis=0))
        score = candidates.max(axis=0) + logits[step]
    path = [int((score + end).argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


@pytest.fixture(scope="module", params=[("cnn", True), ("lstm", False)],
                ids=["char-cnn+crf", "char-lstm"])
def char_run(request, tmp_path_factory) -> Path:
    """A tagging run (6 steps) on the toy NER data, with character features; made once per
    variant for both tests."""
    char_features, crf = request.param
    root = tmp_path_factory.mktemp("char-tagger")
    paths = {s: write_conll(root / f"{s}.conll", rows)
             for s, rows in (("train", TRAIN), ("valid", TEST))}
    config = write(root / "ner.yaml", (
        f"task: tagging\ndata: {{train: {paths['train']}, valid: {paths['valid']}, "
        "lowercase: false}\n"
        f"model: {{hidden_size: 8, embedding_size: 8, char_features: {char_features}, "
        f"crf: {str(crf).lower()}}}\n"
        "train: {batch_size: 8, lr: 0.02, max_steps: 6, eval_every: 6, seed: 0, "
        "progress: false}\n"))
    tasks.train(tasks.load_config(config, []), root / "ner")
    return root / "ner"


def test_report_tags_the_samples_with_character_features(cli, char_run, monkeypatch):
    from rnnkit.analysis import report

    titles = []
    heatmap = report.plots.heatmap_figure
    monkeypatch.setattr(report.plots, "heatmap_figure",
                        lambda values, title: titles.append(title) or heatmap(values, title))
    result = cli("report", char_run)
    assert result.exit_code == 0, result.output
    # the hidden-state view is over the sentence's words, not a word's characters
    assert titles == ["encoder.rnn: top layer, 32 most active units, first example"]
    page = (char_run / "report.html").read_text(encoding="utf-8")
    assert "Not available" not in page
    assert "Predicted tags; mistakes in red" in page
    assert re.search(r"<span[^>]*>meet/(O|B-PER|I-PER|B-LOC|I-LOC)", page)


def test_export_takes_the_chars_and_decodes_as_predict_does(cli, char_run):
    result = cli("export", char_run, "--format", "onnx")
    assert result.exit_code == 0, result.output
    differences = [float(x) for x in re.findall(r"max abs difference (\S+)", result.stdout)]
    assert len(differences) == 2 and max(differences) < 1e-4

    import onnxruntime

    run = tasks.load_run(char_run)
    session = onnxruntime.InferenceSession(str(char_run / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in session.get_inputs()}
    assert inputs == {"tokens": ["batch", "sequence"], "lengths": ["batch"],
                      "chars": ["batch", "sequence", "word_length"]}
    crf = run.model.config.crf
    assert [o.name for o in session.get_outputs()] == (
        ["logits", "transitions", "start", "end"] if crf else ["logits"])

    sentences = ["meet Zed Quo in Oslo", "we sat in Rome", "Lima"]  # lengths and widths differ
    encoded = [run.task.encode(s.split()) for s in sentences]
    tokens, lengths = pad_sequences([ids for ids, _ in encoded], run.task.vocab.pad_id)
    chars = pad_chars([c for _, c in encoded])
    outputs = session.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy(),
                                 "chars": chars.numpy()})
    names = run.task.tags.itos
    for row, expected in enumerate(run.predict(sentences)):
        length = int(lengths[row])
        ids = (viterbi(outputs[0][row], length, *outputs[1:]) if crf
               else outputs[0][row, :length].argmax(axis=-1).tolist())
        assert [names[i] for i in ids] == expected["tags"]

