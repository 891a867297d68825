"""Tagging with chunk tags: scheme detection and conversion, entity metrics in evaluate,
entities in predict, CRF and character features through the task, pretrained vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnkit import tasks
from rnnkit.data import DataFormatError
from rnnkit.data.vectors import read_vectors

# A toy NER language: capitalised words after "meet" are people, "in X" a place.
TRAIN = [
    ("meet Ann Lee in Paris", "O B-PER I-PER O B-LOC"),
    ("meet Bob in Rome", "O B-PER O B-LOC"),
    ("we go in Oslo", "O O O B-LOC"),
    ("meet Cy Moe Ray", "O B-PER I-PER I-PER"),
    ("meet Dee in Lima now", "O B-PER O B-LOC O"),
    ("they sat in Kyiv", "O O O B-LOC"),
] * 6
TEST = [("meet Eve in Rome", "O B-PER O B-LOC"), ("meet Ann Lee now", "O B-PER I-PER O")]


def write_conll(path: Path, rows) -> Path:
    blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(words.split(), tags.split(), strict=True))
              for words, tags in rows]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def train(tmp_path: Path, model: dict, data: dict | None = None, steps: int = 60):
    paths = {s: write_conll(tmp_path / f"{s}.conll", rows)
             for s, rows in (("train", TRAIN), ("valid", TEST), ("test", TEST))}
    raw = {"task": "tagging",
           "data": {**{s: str(p) for s, p in paths.items()}, "lowercase": False, **(data or {})},
           "model": {"hidden_size": 16, "embedding_size": 8, "dropout": 0.0, **model},
           "train": {"batch_size": 8, "lr": 0.02, "max_steps": steps, "eval_every": steps,
                     "seed": 0, "progress": False}}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(raw))
    config = tasks.load_config(config_path, [])
    return tasks.train(config, tmp_path / "run"), tasks.load_run(tmp_path / "run")


def test_ner_run_reports_entity_scores_and_predicts_spans(tmp_path):
    model = {"crf": True, "char_features": "cnn"}
    outcome, run = train(tmp_path, model, steps=40)
    assert run.task.scheme == "iob2" and run.task.monitor == "valid_f1"
    test = outcome.test_metrics
    assert {"f1", "precision", "recall", "macro_f1", "PER_f1", "LOC_recall", "accuracy"} <= set(
        test)
    assert test["f1"] == 1.0 and test["accuracy"] == 1.0
    [row] = run.predict(["meet Zed Quo in Oslo"])  # Zed, Quo, Oslo: unseen or rare words
    assert row["tags"] == ["O", "B-PER", "I-PER", "O", "B-LOC"]
    assert row["entities"] == [{"text": "Zed Quo", "type": "PER", "start": 1, "end": 3},
                               {"text": "Oslo", "type": "LOC", "start": 4, "end": 5}]
    assert run.model.config.crf and run.model.config.char_features == "cnn"


def test_tag_scheme_converts_training_tags_and_crf_forbids_invalid_transitions(tmp_path):
    _, run = train(tmp_path, {"crf": True}, {"tag_scheme": "bioes"}, steps=2)
    assert run.task.scheme == "bioes"
    assert run.task.tags.itos == ["B-LOC", "B-PER", "E-LOC", "E-PER", "I-LOC", "I-PER", "O",
                                  "S-LOC", "S-PER"]
    examples = run.task.read(tmp_path / "test.conll")
    assert [run.task.tags.itos[i] for i in examples[1][1]] == ["O", "B-PER", "E-PER", "O"]
    pairs = {tuple(p) for p in run.model.config.forbidden_transitions}
    names = run.task.tags.itos
    assert (names.index("O"), names.index("I-PER")) in pairs
    assert (names.index("B-PER"), len(names) + 1) in pairs  # a chunk cannot end at B-


def test_plain_tags_keep_token_accuracy_only(tmp_path):
    outcome, run = train(tmp_path, {}, {"tag_scheme": "none"}, steps=2)
    assert run.task.scheme is None and run.task.monitor == "valid_loss"
    assert set(outcome.test_metrics) == {"loss", "accuracy"}
    assert "entities" not in run.predict(["meet Ann"])[0]


def write_vectors(path: Path, header: bool = True, bad: str | None = None) -> Path:
    lines = ["3 4"] if header else []
    lines += ["meet 1 0 0 0", "Paris 0 1 0 0", "zebra 0 0 1 0.5"]
    if bad:
        lines.append(bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pretrained_vectors_fill_the_vocabulary_and_embeddings(tmp_path):
    vectors = write_vectors(tmp_path / "v.vec")
    _, run = train(tmp_path, {"pretrained_vectors": str(vectors), "freeze_embeddings": True},
                   steps=2)
    vocab, weight = run.task.vocab, run.model.encoder.embedding.weight
    assert "zebra" in vocab  # not in the training data, covered by the vectors
    assert weight.shape[1] == 4 and run.model.config.freeze_embeddings
    assert torch.equal(weight[vocab.stoi["zebra"]], torch.tensor([0.0, 0.0, 1.0, 0.5]))
    assert torch.equal(weight[vocab.stoi["Paris"]], torch.tensor([0.0, 1.0, 0.0, 0.0]))


def test_vectors_files_glove_and_bad_lines(tmp_path):
    words, vectors = read_vectors(write_vectors(tmp_path / "glove.txt", header=False),
                                  lowercase=True)
    assert words == ["meet", "paris", "zebra"] and vectors.shape == (3, 4)
    with pytest.raises(DataFormatError, match=r"bad\.vec:5: expected a word and 4 numbers, "
                                              r"got 3 values"):
        read_vectors(write_vectors(tmp_path / "bad.vec", bad="oops 1 2 3"))
    with pytest.raises(DataFormatError, match=r"nan\.vec:5: the values of 'oops' are not all"):
        read_vectors(write_vectors(tmp_path / "nan.vec", bad="oops 1 2 x 3"))


def test_reading_builds_the_vocabularies_once_not_per_sentence(tmp_path, monkeypatch):
    # Rebuilding them per sentence made reading the Brown corpus quadratic (hours).
    from rnnkit.data.vocab import Vocab

    _, run = train(tmp_path, {"char_features": "cnn"}, steps=1)
    built = []
    from_json = Vocab.from_json
    monkeypatch.setattr(Vocab, "from_json",
                        classmethod(lambda cls, data: built.append(1) or from_json(data)))
    examples = run.task.read(tmp_path / "train.conll")
    assert len(examples) == len(TRAIN) == 36 and len(built) <= 4
    assert run.task.encode(["meet", "Ann"])[0] == [examples[0][0][0], examples[0][0][1]]
