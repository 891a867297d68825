"""Sequence classification (many-to-one): a CSV/TSV of text and label → a label with its
probability; accuracy and macro-F1."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from rnnkit.data import classification_source
from rnnkit.tasks.base import (
    Task,
    batched_outputs,
    build_vocab,
    label_id,
    read_records,
    truncate,
    vocab_json,
)
from rnnkit.tasks.config import RunConfig
from rnnkit.train import metrics


class ClassificationTask(Task):
    """``data.train``: CSV/TSV with a header holding ``text_column`` and ``label_column``."""

    name = "classification"
    predict_input = "text_column"
    model_type = "sequence_classifier"
    model_fields = ("bidirectional", "pooling", "head_hidden_size")
    default_tokenizer = "word"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "data": {"max_length": 200},
        "model": {"hidden_size": 128, "embedding_size": 64, "bidirectional": True,
                  "pooling": "max", "dropout": 0.3},
        "train": {"lr": 2e-3, "batch_size": 32, "max_epochs": 8, "patience": 3},
    }

    def tokens_of(self, text: str) -> list[str]:
        return truncate(self.tokenizer.encode(text), self.config.data.max_length) or ["<unk>"]

    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> ClassificationTask:
        task = cls(config, {})
        records = read_records(config, cls.name, train_path)
        vocab = build_vocab(config, (task.tokens_of(r.text) for r in records))
        labels = sorted({r.label for r in records})
        if len(labels) < 2:
            raise ValueError(f"{train_path}: expected at least 2 labels, got {labels}")
        task.artifacts = {"vocab": vocab_json(vocab), "labels": labels,
                          "tokenizer": task.tokenizer.name}
        return task

    def read(self, path: str | Path) -> list[tuple[list[int], int]]:
        vocab, labels = self.vocab, self.labels
        return [
            (vocab.encode(self.tokens_of(r.text)), label_id(labels, r.label, path, r.line))
            for r in read_records(self.config, self.name, path)
        ]

    def model_config(self) -> dict[str, Any]:
        return self.model_options(vocab_size=len(self.vocab), num_classes=len(self.labels))

    def train_source(self, examples, seed: int):
        return classification_source(examples, self.vocab.pad_id,
                                     self.config.train.batch_size, seed=seed)

    def _logits(self, model: nn.Module, token_lists: list[list[int]], progress: bool = False):
        """Logits ``(n, classes)`` for every token list, computed in batches."""
        outputs = batched_outputs(model, token_lists, self.vocab.pad_id, progress)
        return torch.cat([logits for logits, _ in outputs])

    def evaluate(self, model: nn.Module, examples, progress: bool = False) -> dict[str, float]:
        logits = self._logits(model, [ids for ids, _ in examples], progress)
        targets = torch.tensor([label for _, label in examples])
        predicted = logits.argmax(dim=-1)
        return {
            "loss": float(torch.nn.functional.cross_entropy(logits, targets)),
            "accuracy": metrics.accuracy(predicted, targets),
            "macro_f1": metrics.macro_f1(predicted, targets,
                                         labels=list(range(len(self.labels)))),
        }

    def predict(self, model: nn.Module, inputs: list[str]) -> list[dict[str, Any]]:
        """Each text → ``label``, its ``probability`` and every class probability."""
        vocab, names = self.vocab, self.labels.itos
        probabilities = self._logits(
            model, [vocab.encode(self.tokens_of(text)) for text in inputs]
        ).softmax(dim=-1)
        rows = []
        for text, row in zip(inputs, probabilities, strict=True):
            best = int(row.argmax())
            rows.append({"text": text, "label": names[best], "probability": float(row[best]),
                         "probabilities": {n: float(p) for n, p in zip(names, row, strict=True)}})
        return rows
