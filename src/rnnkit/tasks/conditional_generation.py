"""Conditional generation (one-to-many): sequences generated from a class, e.g. surnames
conditioned on their language. Data: CSV of text and label, like classification."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from rnnkit.annotations import closest
from rnnkit.data import collate_conditional, conditional_source
from rnnkit.tasks.base import (
    EVAL_BATCH,
    Task,
    build_vocab,
    label_id,
    model_device,
    read_records,
    summed_cross_entropy,
    vocab_json,
)
from rnnkit.tasks.config import RunConfig


class ConditionalGenerationTask(Task):
    """The label column is the condition; the text column is the sequence to generate."""

    name = "conditional_generation"
    predict_input = "text_column"
    model_type = "conditional_generator"
    model_fields = ("condition_mode", "condition_embedding_size")
    use_command = "rnnkit generate {run_dir} --condition <label>"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "model": {"hidden_size": 128, "embedding_size": 32, "dropout": 0.1},
        "train": {"lr": 3e-3, "batch_size": 64, "max_epochs": 20, "patience": 3},
    }

    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> ConditionalGenerationTask:
        task = cls(config, {})
        records = read_records(config, cls.name, train_path)
        vocab = build_vocab(config, (task.tokens_of(r.text) for r in records))
        task.artifacts = {"vocab": vocab_json(vocab), "labels": sorted({r.label for r in records}),
                          "tokenizer": task.tokenizer.name}
        return task

    def read(self, path: str | Path) -> list[tuple[int, list[int]]]:
        vocab, labels = self.vocab, self.labels
        return [(label_id(labels, r.label, path, r.line), vocab.encode(self.tokens_of(r.text)))
                for r in read_records(self.config, self.name, path)]

    def model_config(self) -> dict[str, Any]:
        vocab = self.vocab
        return self.model_options(vocab_size=len(vocab), bos_id=vocab.bos_id,
                                  eos_id=vocab.eos_id, num_conditions=len(self.labels))

    def train_source(self, examples, seed: int):
        vocab = self.vocab
        return conditional_source(examples, vocab.pad_id, vocab.bos_id, vocab.eos_id,
                                  self.config.train.batch_size, seed=seed)

    def evaluate(self, model: nn.Module, examples, progress: bool = False) -> dict[str, float]:
        """Per-token loss and perplexity of the sequences given their conditions (EOS counted)."""
        vocab, device = self.vocab, model_device(model)
        total = count = 0.0
        model.eval()
        with torch.no_grad():
            for start in range(0, len(examples), EVAL_BATCH):
                batch = collate_conditional(examples[start:start + EVAL_BATCH], vocab.pad_id,
                                            vocab.bos_id, vocab.eos_id).to(device)
                logits, _ = model(batch.condition, batch.tokens, batch.lengths)
                loss, n = summed_cross_entropy(logits, batch.targets)
                total, count = total + loss, count + n
        return {"loss": total / count, "perplexity": math.exp(min(total / count, 50.0))}

    def condition_id(self, condition: str | None) -> int:
        """The class id of ``condition``; a clear error names the known ones."""
        labels = self.labels
        if condition is None or condition not in labels:
            raise ValueError(
                f"--condition: expected one of {', '.join(labels.itos)}, got {condition!r}"
                + closest(str(condition), labels.itos)
            )
        return labels.stoi[condition]

    def generate(self, model: nn.Module, prime: str | None = None, length: int = 30,
                 condition: str | None = None, **sampling: Any) -> str:
        vocab = self.vocab
        prime = prime or ""
        ids = model.generate(self.condition_id(condition), length,
                             prime_ids=vocab.encode(self.tokens_of(prime)),
                             banned_ids=(vocab.pad_id, vocab.unk_id, vocab.bos_id), **sampling)
        return self.tokenizer.decode([*self.tokens_of(prime),
                                      *vocab.decode(ids, skip_specials=True)])

    def predict(self, model: nn.Module, inputs: list[str]) -> list[dict[str, Any]]:
        """Each input line is a condition; one sample (seeded by its position) per line."""
        return [{"condition": c, "output": self.generate(model, condition=c.strip(), seed=i)}
                for i, c in enumerate(inputs)]
