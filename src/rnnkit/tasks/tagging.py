"""Sequence tagging (many-to-many): ``word/TAG`` lines or CoNLL/CoNLL-U → a tag per token.

Token accuracy always; when the tags form chunks (IOB1, IOB2/BIO, BIOES, BMES; detected or set
with ``data.tag_scheme``) also entity-level precision, recall and F1 as conlleval computes
them, and predictions list the entities as spans. Options: a CRF output layer, character-level
word features, pretrained word vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from rnnkit.data import IGNORE_INDEX, Vocab, pad_sequences, tagging_source
from rnnkit.data.chars import build_char_vocab, char_tagging_source, pad_chars, word_chars
from rnnkit.data.spans import (
    Scheme,
    convert_tags,
    detect_scheme,
    forbidden_transitions,
    split_tag,
    to_spans,
)
from rnnkit.data.vectors import read_vectors
from rnnkit.tasks.base import (
    EVAL_BATCH,
    Task,
    build_vocab,
    label_id,
    model_device,
    progress_batches,
    read_records,
    summed_cross_entropy,
    vocab_from,
    vocab_json,
)
from rnnkit.tasks.config import RunConfig
from rnnkit.tasks.errors import ConfigError
from rnnkit.train import metrics

_SCHEME_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES", "bmes": "BMES"}


class TaggingTask(Task):
    """Words are tokens as written (``data.lowercase`` folds case; character features always
    see the original case); tags come from training."""

    name = "tagging"
    predict_input = "conll"
    model_type = "sequence_tagger"
    model_fields = ("bidirectional", "head_hidden_size", "crf", "char_features",
                    "pretrained_vectors", "freeze_embeddings")
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "model": {"hidden_size": 128, "embedding_size": 100, "bidirectional": True,
                  "dropout": 0.25},
        "train": {"lr": 3e-3, "batch_size": 32, "max_epochs": 10, "patience": 2},
        "data": {"lowercase": True},
    }

    def words_of(self, words: tuple[str, ...] | list[str]) -> list[str]:
        return [w.lower() for w in words] if self.config.data.lowercase else list(words)

    # ------------------------------------------------------------------ chunks and monitor
    @property
    def scheme(self) -> Scheme | None:
        """The chunk scheme of the tags (``None``: plain tags such as POS)."""
        return self.artifacts.get("scheme")

    @property
    def monitor(self) -> str:  # type: ignore[override]
        return "valid_f1" if self.scheme else "valid_loss"

    @property
    def monitor_mode(self) -> str:  # type: ignore[override]
        return "max" if self.scheme else "min"

    def tags_of(self, tags: tuple[str, ...] | list[str]) -> list[str]:
        """``tags`` in the run's scheme (read as conlleval reads them; unchanged without one)."""
        return convert_tags(tags, self.scheme) if self.scheme else list(tags)

    # ------------------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> TaggingTask:
        task = cls(config, {})
        sentences = read_records(config, cls.name, train_path)
        scheme = _scheme(config, [s.tags for s in sentences], train_path)
        task.artifacts = {"scheme": scheme}
        tags = {t for s in sentences for t in task.tags_of(s.tags)}
        if scheme:  # every prefix of every type, so converted files never meet an unseen tag
            kinds = {split_tag(t)[1] for t in tags if t != "O"}
            tags = {"O"} | {f"{p}-{k}" if k else p for k in kinds
                            for p in _SCHEME_PREFIXES[scheme]}
        vocab = build_vocab(config, (task.words_of(s.words) for s in sentences))
        path = config.model.pretrained_vectors
        if path:
            words, _ = read_vectors(path, lowercase=config.data.lowercase)
            known = vocab.itos[len(vocab.specials):]
            vocab = Vocab(list(dict.fromkeys([*known, *words])), vocab.specials)
        task.artifacts.update(vocab=vocab_json(vocab), tags=sorted(tags))
        if config.model.char_features not in (None, "none"):
            chars = build_char_vocab(w for s in sentences for w in s.words)
            task.artifacts["chars"] = vocab_json(chars)
        return task

    @property
    def tags(self) -> Vocab:
        return Vocab(self.artifacts["tags"], specials=())

    @property
    def chars(self) -> Vocab | None:
        """Character vocabulary of runs with character features."""
        return vocab_from(self.artifacts, "chars") if "chars" in self.artifacts else None

    def encoder(self) -> Callable[[Sequence[str]], tuple[list[int], list[list[int]]]]:
        """``words`` → word ids and (with character features) character ids per word.

        The vocabularies are rebuilt from the artifacts once here, not per sentence: per
        sentence that made reading the Brown corpus quadratic (hours)."""
        vocab, chars = self.vocab, self.chars

        def encode(words: Sequence[str]) -> tuple[list[int], list[list[int]]]:
            return (vocab.encode(self.words_of(words)),
                    word_chars(chars, words) if chars is not None else [])

        return encode

    def encode(self, words: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """Word ids and (with character features) character ids per word of one sentence."""
        return self.encoder()(words)

    def read(self, path: str | Path) -> list[tuple]:
        tags, examples, encode = self.tags, [], self.encoder()
        with_chars = self.chars is not None
        for s in read_records(self.config, self.name, path):
            ids, chars = encode(s.words)
            tag_ids = [label_id(tags, t, path, s.line) for t in self.tags_of(s.tags)]
            examples.append((ids, tag_ids, chars) if with_chars else (ids, tag_ids))
        return examples

    # ----------------------------------------------------------------------- the model
    def model_config(self) -> dict[str, Any]:
        options = self.model_options(vocab_size=len(self.vocab), num_tags=len(self.tags))
        path = options.pop("pretrained_vectors", None)
        if path:
            options["embedding_size"] = int(read_vectors(path, self.config.data.lowercase)[1]
                                            .shape[1])
        if options.get("crf") and self.scheme:
            options["forbidden_transitions"] = forbidden_transitions(self.tags.itos, self.scheme)
        if self.chars is not None:
            options["num_chars"] = len(self.chars)
        return options

    def build_model(self) -> nn.Module:
        """A fresh tagger; rows of words with a pretrained vector start from it."""
        model = super().build_model()
        path = self.config.model.pretrained_vectors
        if path:
            words, vectors = read_vectors(path, lowercase=self.config.data.lowercase)
            stoi = self.vocab.stoi
            rows = [stoi[w] for w in words if w in stoi]
            found = [i for i, w in enumerate(words) if w in stoi]
            with torch.no_grad():
                weight = model.encoder.embedding.weight
                weight[rows] = torch.as_tensor(vectors[found], dtype=weight.dtype)
        return model

    def train_source(self, examples, seed: int):
        size = self.config.train.batch_size
        if self.chars is not None:
            return char_tagging_source(examples, self.vocab.pad_id, size, seed=seed)
        return tagging_source(examples, self.vocab.pad_id, size, seed=seed)

    def _batches(self, model: nn.Module, examples: list[tuple], progress: bool = False):
        """Per batch of ``examples`` (eval mode, no grad): logits ``(batch, seq, tags)``,
        decoded tag ids ``(batch, seq)`` and lengths, on CPU."""
        device, starts = model_device(model), range(0, len(examples), EVAL_BATCH)
        with_chars, pad_id = self.chars is not None, self.vocab.pad_id
        model.eval()
        with torch.no_grad():
            for start in progress_batches(iter(starts), len(starts), progress, "evaluate"):
                part = examples[start:start + EVAL_BATCH]
                tokens, lengths = pad_sequences([e[0] for e in part], pad_id)
                chars = pad_chars([e[2] for e in part]).to(device) if with_chars else None
                logits = model(tokens.to(device), lengths, chars)
                yield logits.cpu(), model.decode(logits, lengths).cpu(), lengths

    def evaluate(self, model: nn.Module, examples, progress: bool = False) -> dict[str, float]:
        correct = total = 0
        loss_sum = 0.0
        predicted_spans, gold_spans, names = [], [], self.tags.itos
        batches = self._batches(model, examples, progress)
        for start, (logits, decoded, lengths) in zip(range(0, len(examples), EVAL_BATCH),
                                                     batches, strict=True):
            targets, _ = pad_sequences([e[1] for e in examples[start:start + EVAL_BATCH]],
                                       IGNORE_INDEX)
            scored = targets != IGNORE_INDEX
            correct += int((decoded[scored] == targets[scored]).sum())
            total += int(scored.sum())
            if getattr(model, "crf", None) is not None:
                loss_sum += float(model.crf.nll(logits, targets, lengths).sum())
            else:
                loss_sum += summed_cross_entropy(logits, targets)[0]
            if self.scheme:
                for row, length in enumerate(lengths.tolist()):
                    predicted_spans.append(to_spans([names[i] for i in decoded[row, :length]]))
                    gold_spans.append(to_spans([names[i] for i in targets[row, :length]]))
        result = {"loss": loss_sum / total, "accuracy": correct / total}
        if self.scheme:
            result.update(self._entity_metrics(predicted_spans, gold_spans))
        return result

    def _entity_metrics(self, predicted, gold) -> dict[str, float]:
        """Micro and macro P/R/F1, then ``<type>_precision|recall|f1`` for every type of the
        tag set (the same keys at every evaluation)."""
        scores = metrics.entity_scores(predicted, gold)
        result = {name: scores[name] for name in ("precision", "recall", "f1", "macro_precision",
                                                  "macro_recall", "macro_f1")}
        kinds = sorted({split_tag(t)[1] for t in self.tags.itos if t != "O"})
        for kind in kinds:
            row = scores["per_type"].get(kind, {"precision": 0.0, "recall": 0.0, "f1": 0.0})
            for name in ("precision", "recall", "f1"):
                result[f"{kind or 'chunk'}_{name}"] = row[name]
        return result

    def predict(self, model: nn.Module, inputs: list[str]) -> list[dict[str, Any]]:
        """Each line of whitespace-separated words → its tags (and, with a chunk scheme, its
        entities: ``{"text", "type", "start", "end"}``, token offsets, ``end`` exclusive)."""
        words = [line.split() or [""] for line in inputs]
        examples = [(ids, [], chars) for ids, chars in map(self.encoder(), words)]
        names, rows = self.tags.itos, []
        predicted = [ids for _, decoded, _ in self._batches(model, examples)
                     for ids in decoded.tolist()]
        for sentence, ids in zip(words, predicted, strict=True):
            tags = [names[i] for i in ids[: len(sentence)]]
            row: dict[str, Any] = {
                "text": " ".join(sentence), "tokens": sentence, "tags": tags,
                "tagged": " ".join(f"{w}/{t}" for w, t in zip(sentence, tags, strict=True))}
            if self.scheme:
                row["entities"] = [{"text": " ".join(sentence[s.start:s.end]), "type": s.type,
                                    "start": s.start, "end": s.end} for s in to_spans(tags)]
            rows.append(row)
        return rows


def _scheme(config: RunConfig, tag_sequences: list[tuple[str, ...]], path: Path) -> Scheme | None:
    """``data.tag_scheme``: ``auto`` detects it from the training tags, ``none`` turns chunks
    off, a scheme name converts every file's tags to it."""
    choice = config.data.tag_scheme
    if choice == "auto":
        return detect_scheme(tag_sequences)
    if choice == "none":
        return None
    if detect_scheme(tag_sequences) is None:
        raise ConfigError(f"data.tag_scheme: {choice} needs chunk tags (O, B-X, I-X, ...), but "
                          f"{path} has other tags")
    return choice  # type: ignore[return-value]


def most_frequent_tag_accuracy(train, test) -> float:
    """Baseline: each known word gets its most frequent training tag, unknown words the most
    frequent tag overall. ``train``/``test``: ``(word_ids, tag_ids, ...)`` examples."""
    from collections import Counter, defaultdict

    by_word: dict[int, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for words, tags, *_ in train:
        for w, t in zip(words, tags, strict=True):
            by_word[w][t] += 1
            overall[t] += 1
    fallback = overall.most_common(1)[0][0]
    guesses = [by_word[w].most_common(1)[0][0] if w in by_word else fallback
               for words, *_ in test for w in words]
    truth = [t for _, tags, *_ in test for t in tags]
    return metrics.accuracy(guesses, truth)
