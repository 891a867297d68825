"""Sequence tagging (many-to-many): ``word/TAG`` lines or CoNLL/CoNLL-U → a tag per token;
token accuracy with padding ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from rnnkit.data import IGNORE_INDEX, Vocab, pad_sequences, tagging_source
from rnnkit.tasks.base import (
    Task,
    batched_outputs,
    build_vocab,
    label_id,
    read_records,
    summed_cross_entropy,
    vocab_json,
)
from rnnkit.tasks.config import RunConfig
from rnnkit.train import metrics

EVAL_BATCH = 256


class TaggingTask(Task):
    """Words are tokens as written (``data.lowercase`` folds case); tags come from training."""

    name = "tagging"
    model_type = "sequence_tagger"
    model_fields = ("bidirectional", "head_hidden_size")
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "model": {"hidden_size": 128, "embedding_size": 100, "bidirectional": True,
                  "dropout": 0.25},
        "train": {"lr": 3e-3, "batch_size": 32, "max_epochs": 10, "patience": 2},
        "data": {"lowercase": True},
    }

    def words_of(self, words: tuple[str, ...] | list[str]) -> list[str]:
        return [w.lower() for w in words] if self.config.data.lowercase else list(words)

    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> TaggingTask:
        task = cls(config, {})
        sentences = read_records(config, cls.name, train_path)
        vocab = build_vocab(config, (task.words_of(s.words) for s in sentences))
        tags = sorted({t for s in sentences for t in s.tags})
        task.artifacts = {"vocab": vocab_json(vocab), "tags": tags}
        return task

    @property
    def tags(self) -> Vocab:
        return Vocab(self.artifacts["tags"], specials=())

    def read(self, path: str | Path) -> list[tuple[list[int], list[int]]]:
        vocab, tags = self.vocab, self.tags
        return [
            (vocab.encode(self.words_of(s.words)),
             [label_id(tags, t, path, s.line) for t in s.tags])
            for s in read_records(self.config, self.name, path)
        ]

    def model_config(self) -> dict[str, Any]:
        return self.model_options(vocab_size=len(self.vocab), num_tags=len(self.tags))

    def train_source(self, examples, seed: int):
        return tagging_source(examples, self.vocab.pad_id, self.config.train.batch_size, seed=seed)

    def _logits(self, model: nn.Module, token_lists: list[list[int]], progress: bool = False):
        """Per batch: logits ``(batch, seq, tags)`` and lengths."""
        return batched_outputs(model, token_lists, self.vocab.pad_id, progress, EVAL_BATCH)

    def evaluate(self, model: nn.Module, examples, progress: bool = False) -> dict[str, float]:
        outputs = self._logits(model, [ids for ids, _ in examples], progress)
        correct = total = 0
        loss_sum = 0.0
        for start, (logits, _) in zip(range(0, len(examples), EVAL_BATCH), outputs, strict=True):
            targets, _ = pad_sequences([t for _, t in examples[start:start + EVAL_BATCH]],
                                       IGNORE_INDEX)
            scored = targets != IGNORE_INDEX
            correct += int((logits.argmax(-1)[scored] == targets[scored]).sum())
            total += int(scored.sum())
            loss_sum += summed_cross_entropy(logits, targets)[0]
        return {"loss": loss_sum / total, "accuracy": correct / total}

    def predict(self, model: nn.Module, inputs: list[str]) -> list[dict[str, Any]]:
        """Each line of whitespace-separated words → its tags."""
        words = [line.split() or [""] for line in inputs]
        outputs = self._logits(model, [self.vocab.encode(self.words_of(w)) for w in words])
        names, rows = self.tags.itos, []
        predicted = [ids for logits, _ in outputs for ids in logits.argmax(-1).tolist()]
        for sentence, ids in zip(words, predicted, strict=True):
            tags = [names[i] for i in ids[: len(sentence)]]
            rows.append({"text": " ".join(sentence), "tokens": sentence, "tags": tags,
                         "tagged": " ".join(f"{w}/{t}" for w, t in zip(sentence, tags,
                                                                         strict=True))})
        return rows


def most_frequent_tag_accuracy(train, test) -> float:
    """Baseline: each known word gets its most frequent training tag, unknown words the most
    frequent tag overall. ``train``/``test``: ``(word_ids, tag_ids)`` examples."""
    from collections import Counter, defaultdict

    by_word: dict[int, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for words, tags in train:
        for w, t in zip(words, tags, strict=True):
            by_word[w][t] += 1
            overall[t] += 1
    fallback = overall.most_common(1)[0][0]
    guesses = [by_word[w].most_common(1)[0][0] if w in by_word else fallback
               for words, _ in test for w in words]
    truth = [t for _, tags in test for t in tags]
    return metrics.accuracy(guesses, truth)
