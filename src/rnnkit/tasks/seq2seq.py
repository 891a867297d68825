"""Sequence to sequence: ``source<TAB>target`` lines → an encoder-decoder with attention;
exact match, BLEU and chrF of the decoded outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from rnnkit.data import PairBatch, Vocab, pad_sequences, pair_source
from rnnkit.data.subword import SUBWORD_KINDS, SubwordTokenizer
from rnnkit.tasks.base import (
    Task,
    build_vocab,
    model_device,
    progress_batches,
    read_records,
    vocab_from,
    vocab_json,
)
from rnnkit.tasks.config import RunConfig
from rnnkit.tasks.errors import ConfigError
from rnnkit.train import metrics

EVAL_BATCH = 128
SUBWORD_KEY = "subword_tokenizer"  # artifact: the trained bpe/unigram model's JSON


class Seq2SeqLoss:
    """``model.loss(batch)`` after setting the teacher-forcing ratio for the current step."""

    state_replicated = True  # every data-parallel rank counts the same steps

    def __init__(self) -> None:
        self.step = 0

    def __call__(self, model: nn.Module, batch: PairBatch) -> torch.Tensor:
        model.set_training_step(self.step)  # type: ignore[operator]
        self.step += 1
        return model.loss(batch)  # type: ignore[operator]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The step count, checkpointed so a resumed run continues the schedule."""
        return {"step": torch.tensor(self.step)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.step = int(state["step"])


class Seq2SeqTask(Task):
    """Source and target are tokenized alike (characters by default) with separate vocabularies."""

    name = "seq2seq"
    predict_input = "source_column"
    predict_options = frozenset({"beam_size", "n_best"})
    model_type = "seq2seq"
    # Loss, not exact match: on real translations exact match stays 0 for long while loss and
    # chrF improve, so early stopping on it ends training far too soon (train.monitor: chrf).
    monitor = "valid_loss"
    monitor_mode = "min"
    model_fields = (
        "bidirectional", "attention", "teacher_forcing_start", "teacher_forcing_floor",
        "teacher_forcing_decay_steps", "beam_size", "length_penalty",
    )
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "model": {"hidden_size": 128, "embedding_size": 32, "bidirectional": True,
                  "attention": "bahdanau"},
        "train": {"lr": 3e-3, "batch_size": 64, "max_epochs": 15, "patience": 3},
    }

    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> Seq2SeqTask:
        task = cls(config, {})
        pairs = read_records(config, cls.name, train_path)
        if config.data.tokenizer in SUBWORD_KINDS:
            task.artifacts[SUBWORD_KEY] = _train_subword(config, pairs)
        source = build_vocab(config, (task.tokens_of(p.source) for p in pairs))
        target = build_vocab(config, (task.tokens_of(p.target) for p in pairs))
        task.artifacts.update({"source_vocab": vocab_json(source),
                               "target_vocab": vocab_json(target),
                               "tokenizer": task.tokenizer.name})
        return task

    @property
    def tokenizer(self):
        """``data.tokenizer``; a bpe/unigram model comes from the run's artifacts (built once
        per task object: parsing its JSON for every line would dominate decoding)."""
        if self.config.data.tokenizer not in SUBWORD_KINDS:
            return super().tokenizer
        stored = self.artifacts.get(SUBWORD_KEY)
        if stored is None:
            raise ValueError(f"data.tokenizer: {self.config.data.tokenizer} needs the subword "
                             f"model trained with the run, but artifacts hold no {SUBWORD_KEY}")
        cached = self.__dict__.get("_subword")
        if cached is None or cached[0] is not stored:
            model = SubwordTokenizer.from_json(json.dumps(stored), self.config.data.tokenizer)
            self.__dict__["_subword"] = cached = (stored, model)
        return cached[1]

    @property
    def source_vocab(self) -> Vocab:
        return vocab_from(self.artifacts, "source_vocab")

    @property
    def target_vocab(self) -> Vocab:
        return vocab_from(self.artifacts, "target_vocab")

    def read(self, path: str | Path) -> list[tuple[list[int], list[int]]]:
        source, target = self.source_vocab, self.target_vocab
        return [(source.encode(self.tokens_of(p.source)), target.encode(self.tokens_of(p.target)))
                for p in read_records(self.config, self.name, path)]

    def model_config(self) -> dict[str, Any]:
        target = self.target_vocab
        return self.model_options(
            source_vocab_size=len(self.source_vocab), target_vocab_size=len(target),
            bos_id=target.bos_id, eos_id=target.eos_id, pad_id=target.pad_id,
        )

    def train_source(self, examples, seed: int):
        target = self.target_vocab
        return pair_source(examples, target.pad_id, target.bos_id, target.eos_id,
                           self.config.train.batch_size, seed=seed)

    def loss_fn(self) -> Seq2SeqLoss:
        return Seq2SeqLoss()

    def decode(self, model: nn.Module, sources: list[list[int]], progress: bool = False):
        """Decoded target strings for source id lists (greedy, or beam with beam_size > 1)."""
        beam_size = self.config.model.beam_size
        return [hypotheses[0][0] for hypotheses in
                self.decode_n_best(model, sources, beam_size, 1, progress)]

    def decode_n_best(self, model: nn.Module, sources: list[list[int]], beam_size: int,
                      n_best: int, progress: bool = False) -> list[list[tuple[str, float]]]:
        """Per source id list, the ``n_best`` best ``(text, log-probability)`` of a beam
        search of ``beam_size`` (greedy when it is 1), best first."""
        if not isinstance(n_best, int) or not 1 <= n_best <= beam_size:
            raise ValueError(f"n_best: expected an integer in [1, beam_size={beam_size}], "
                             f"got {n_best!r}")
        device, pad, results = model_device(model), self.source_vocab.pad_id, []
        starts = range(0, len(sources), EVAL_BATCH)
        for start in progress_batches(iter(starts), len(starts), progress, "decode"):
            tokens, lengths = pad_sequences(sources[start:start + EVAL_BATCH], pad)
            tokens = tokens.to(device)
            if beam_size > 1:
                ranked = model.beam_decode_n_best(
                    tokens, lengths, beam_size, n_best,
                    length_penalty=self.config.model.length_penalty)
            else:
                ranked = [model.greedy_decode(tokens, lengths)]
            texts = [self._texts(decoded) for decoded in ranked]  # (n_best, rows)
            scores = [decoded.scores.tolist() for decoded in ranked]
            for row in range(len(texts[0])):
                results.append([(texts[rank][row], scores[rank][row])
                                for rank in range(len(ranked))])
        return results

    def _texts(self, decoded) -> list[str]:
        """The target strings of a :class:`~rnnkit.models.Decoded` batch."""
        target = self.target_vocab
        return [self.tokenizer.decode(target.decode(row[:length], skip_specials=True))
                for row, length in zip(decoded.tokens.tolist(), decoded.lengths.tolist(),
                                       strict=True)]

    def evaluate(self, model: nn.Module, examples, progress: bool = False) -> dict[str, float]:
        target = self.target_vocab
        references = [self.tokenizer.decode(target.decode(t, skip_specials=True))
                      for _, t in examples]
        hypotheses = self.decode(model, [s for s, _ in examples], progress)
        loss = _teacher_forced_loss(model, examples, target)
        return {
            "loss": loss,
            "exact_match": metrics.exact_match(hypotheses, references),
            "bleu": metrics.bleu(hypotheses, references),
            "chrf": metrics.chrf(hypotheses, references),
        }

    def predict(self, model: nn.Module, inputs: list[str], beam_size: int | None = None,
                n_best: int = 1) -> list[dict[str, Any]]:
        """Each source line → ``{"source", "output"}``, decoded with ``beam_size`` (default
        ``model.beam_size``). With ``n_best`` > 1, one row per hypothesis, best first:
        ``{"source", "rank", "output", "score"}`` (score: summed log-probability)."""
        if beam_size is None:
            beam_size = self.config.model.beam_size
        if not isinstance(beam_size, int) or isinstance(beam_size, bool) or beam_size < 1:
            raise ValueError(f"beam_size: expected an integer >= 1, got {beam_size!r}")
        vocab = self.source_vocab
        ranked = self.decode_n_best(model, [vocab.encode(self.tokens_of(t)) or [vocab.unk_id]
                                            for t in inputs], beam_size, n_best)
        if n_best == 1:
            return [{"source": s, "output": hypotheses[0][0]}
                    for s, hypotheses in zip(inputs, ranked, strict=True)]
        return [{"source": s, "rank": rank, "output": text, "score": score}
                for s, hypotheses in zip(inputs, ranked, strict=True)
                for rank, (text, score) in enumerate(hypotheses, start=1)]


def _train_subword(config: RunConfig, pairs) -> dict[str, Any]:
    """A bpe/unigram model learnt from the training pairs (sources and targets together, so
    shared words segment alike), as the JSON object stored in the run's artifacts."""
    size = config.data.vocab_size
    if size < 2:
        raise ConfigError(f"data.vocab_size: expected an integer >= 2, got {size}")
    texts = (text for pair in pairs for text in (pair.source, pair.target))
    model = SubwordTokenizer.train(texts, config.data.tokenizer, size)
    return json.loads(model.to_json())


def _teacher_forced_loss(model: nn.Module, examples, target: Vocab) -> float:
    """Mean per-token loss with full teacher forcing (eval mode)."""
    from rnnkit.data import collate_pairs

    model.eval()
    total, count = 0.0, 0
    device = model_device(model)
    with torch.no_grad():
        for start in range(0, len(examples), EVAL_BATCH):
            batch = collate_pairs(examples[start:start + EVAL_BATCH], target.pad_id,
                                  target.bos_id, target.eos_id).to(device)
            tokens = int((batch.target_lengths - 1).sum())
            total += float(model.loss(batch)) * tokens
            count += tokens
    return total / count
