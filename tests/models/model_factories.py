"""Small models and random padded batches for the model tests."""

from __future__ import annotations

import torch

from rnnkit.data.batch import IGNORE_INDEX, ConditionalBatch, PairBatch, TokenBatch, WindowBatch
from rnnkit.models import (
    ConditionalGenerator,
    ConditionalGeneratorConfig,
    Forecaster,
    ForecasterConfig,
    LanguageModel,
    LanguageModelConfig,
    Seq2Seq,
    Seq2SeqConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    SequenceTagger,
    SequenceTaggerConfig,
)

VOCAB = 11
PAD, BOS, EOS = 0, 1, 2
CELLS = ["rnn", "lstm", "gru"]


def padded_tokens(lengths: list[int], seq: int | None = None, garbage: bool = False):
    """Random ids in [3, VOCAB) ``(batch, seq)``; padding is PAD, or random ids if ``garbage``."""
    seq = seq or max(lengths)
    tokens = torch.randint(3, VOCAB, (len(lengths), seq))
    for row, length in enumerate(lengths):
        if not garbage:
            tokens[row, length:] = PAD
    return tokens


def pad_targets(targets: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """``targets`` with ``IGNORE_INDEX`` after each row's length."""
    targets = targets.clone()
    for row, length in enumerate(lengths):
        targets[row, length:] = IGNORE_INDEX
    return targets


def token_batch(lengths: list[int], targets: str, num_labels: int = VOCAB) -> TokenBatch:
    """A batch with per-token (``'tokens'``) or per-sequence (``'sequence'``) targets."""
    tokens = padded_tokens(lengths)
    if targets == "sequence":
        labels = torch.randint(0, num_labels, (len(lengths),))
    else:
        labels = pad_targets(torch.randint(0, num_labels, tokens.shape), lengths)
    return TokenBatch(tokens, torch.tensor(lengths), labels)


def pair_batch(source_lengths: list[int], target_lengths: list[int]) -> PairBatch:
    """Source/target pairs; targets are BOS ... EOS padded with PAD."""
    source = padded_tokens(source_lengths)
    target = padded_tokens(target_lengths)
    for row, length in enumerate(target_lengths):
        target[row, 0], target[row, length - 1] = BOS, EOS
    return PairBatch(source, torch.tensor(source_lengths), target, torch.tensor(target_lengths))


def language_model(cell: str = "lstm", **overrides) -> LanguageModel:
    settings = {"vocab_size": VOCAB, "embedding_size": 8, "hidden_size": 12, "cell": cell}
    return LanguageModel(LanguageModelConfig(**(settings | overrides)))


def classifier(cell: str = "lstm", bidirectional: bool = False, **overrides) -> SequenceClassifier:
    settings = {"vocab_size": VOCAB, "num_classes": 3, "embedding_size": 8, "hidden_size": 10}
    settings |= {"cell": cell, "bidirectional": bidirectional, "head_hidden_size": 6}
    return SequenceClassifier(SequenceClassifierConfig(**(settings | overrides)))


def tagger(cell: str = "lstm", bidirectional: bool = True, **overrides) -> SequenceTagger:
    settings = {"vocab_size": VOCAB, "num_tags": 5, "embedding_size": 8, "hidden_size": 10}
    settings |= {"cell": cell, "bidirectional": bidirectional}
    return SequenceTagger(SequenceTaggerConfig(**(settings | overrides)))


def seq2seq(cell: str = "gru", attention: str = "bahdanau", **overrides) -> Seq2Seq:
    settings = {"source_vocab_size": VOCAB, "target_vocab_size": VOCAB, "bos_id": BOS}
    settings |= {"eos_id": EOS, "pad_id": PAD, "embedding_size": 8, "hidden_size": 10}
    settings |= {"cell": cell, "attention": attention}
    if attention == "luong_dot":
        settings["bidirectional"] = False  # dot scores need equal decoder/encoder sizes
    return Seq2Seq(Seq2SeqConfig(**(settings | overrides)))


def forecaster(cell: str = "gru", **overrides) -> Forecaster:
    settings = {"input_size": 2, "horizon": 3, "hidden_size": 10, "cell": cell}
    return Forecaster(ForecasterConfig(**(settings | overrides)))


def conditional_generator(cell: str = "gru", **overrides) -> ConditionalGenerator:
    settings = {"vocab_size": VOCAB, "bos_id": BOS, "eos_id": EOS, "num_conditions": 3}
    settings |= {"embedding_size": 8, "hidden_size": 10, "condition_embedding_size": 4}
    settings |= {"cell": cell}
    return ConditionalGenerator(ConditionalGeneratorConfig(**(settings | overrides)))


def conditional_batch(lengths: list[int], vector_size: int = 0) -> ConditionalBatch:
    """Class conditions, or float vectors of ``vector_size`` when it is non-zero."""
    tokens = padded_tokens(lengths)
    tokens[:, 0] = BOS
    targets = pad_targets(torch.randint(3, VOCAB, tokens.shape), lengths)
    if vector_size:
        condition = torch.randn(len(lengths), vector_size)
    else:
        condition = torch.randint(0, 3, (len(lengths),))
    return ConditionalBatch(condition, tokens, torch.tensor(lengths), targets)


def window_batch(batch: int, lookback: int, features: int, horizon: int) -> WindowBatch:
    history = torch.randn(batch, lookback, features)
    return WindowBatch(history, torch.randn(batch, horizon, features))
