"""Each model learns a small real sample bundled with rnnkit well above chance.

Seeded, a few seconds each on 2 CPU cores; thresholds are stated per test and sit well below
what the runs reach (see the figures with ``pytest tests/models/test_real_data.py -s -q``).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import numpy as np
import torch

from rnnkit import models
from rnnkit.data import (
    CharTokenizer,
    StandardScaler,
    Vocab,
    collate_classification,
    collate_conditional,
    collate_pairs,
    collate_tagging,
    collate_windows,
    sliding_windows,
)
from rnnkit.data.batch import IGNORE_INDEX, TokenBatch
from rnnkit.data.datasets import load_sample


def fit(model, batches, steps: int, lr: float = 0.005, loss_fn=None) -> None:
    """Adam over ``steps`` batches: drawn from the list ``batches`` (seeded order), or taken in
    turn from an iterator."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    order = random.Random(0)
    loss_fn = loss_fn or (lambda model, batch: model.loss(batch))
    model.train()
    for _ in range(steps):
        batch = order.choice(batches) if isinstance(batches, list) else next(batches)
        loss = loss_fn(model, batch)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
    model.eval()


def batched(examples, size, collate):
    shuffled = list(examples)
    random.Random(0).shuffle(shuffled)
    return [collate(shuffled[i : i + size]) for i in range(0, len(shuffled), size)]


def records(name: str, split: str):
    return list(load_sample(name).reader(split).read())


def test_classifier_names_by_language():
    """Language of a surname from its letters (18 classes): valid accuracy >= 0.45, about 5x
    the majority class."""
    torch.manual_seed(0)
    train, valid = records("names", "train"), records("names", "valid")
    chars = CharTokenizer()
    vocab = Vocab.build(chars.encode(r.text) for r in train)
    labels = Vocab.build_labels(r.label for r in train)

    def encode(rs):
        return [(vocab.encode(chars.encode(r.text)), labels.lookup(r.label)) for r in rs]

    config = models.SequenceClassifierConfig(
        vocab_size=len(vocab), num_classes=len(labels), embedding_size=32, hidden_size=64,
        cell="gru", bidirectional=True, pooling="last",
    )  # fmt: skip
    model = models.SequenceClassifier(config)
    fit(model, batched(encode(train), 32, lambda b: collate_classification(b, vocab.pad_id)), 250)
    test = collate_classification(encode(valid), vocab.pad_id)
    accuracy = float((model.predict(test.tokens, test.lengths) == test.targets).float().mean())
    majority = Counter(r.label for r in valid).most_common(1)[0][1] / len(valid)
    print(f"names classification: valid accuracy {accuracy:.3f} (majority class {majority:.3f})")
    assert accuracy >= 0.45


def test_tagger_brown_universal_pos():
    """Universal POS tags on Brown sentences: valid token accuracy >= 0.85 (majority tag
    NOUN: about 0.21). Words seen once map to UNK so the model learns to tag unseen words."""
    torch.manual_seed(0)
    train, valid = records("brown_pos", "train"), records("brown_pos", "valid")
    vocab = Vocab.build((s.words for s in train), min_freq=2)
    tags = Vocab.build_labels(t for s in train for t in s.tags)

    def encode(sentences):
        return [(vocab.encode(s.words), [tags.lookup(t) for t in s.tags]) for s in sentences]

    config = models.SequenceTaggerConfig(
        vocab_size=len(vocab), num_tags=len(tags), embedding_size=32, hidden_size=32, cell="lstm"
    )
    model = models.SequenceTagger(config)
    fit(model, batched(encode(train), 32, lambda b: collate_tagging(b, vocab.pad_id)), 120, 0.01)
    test = collate_tagging(encode(valid), vocab.pad_id)
    predictions = model.predict(test.tokens, test.lengths)
    real = test.targets != IGNORE_INDEX
    accuracy = float((predictions[real] == test.targets[real]).float().mean())
    majority = Counter(t for s in valid for t in s.tags).most_common(1)[0][1] / int(real.sum())
    print(f"brown POS tagging: valid token accuracy {accuracy:.3f} (majority tag {majority:.3f})")
    assert accuracy >= 0.85


def _consecutive_chunks(ids: torch.Tensor, streams: int, length: int):
    """char-rnn batching: ``streams`` parallel slices of the text, served chunk after chunk."""
    per_stream = (len(ids) - 1) // streams
    inputs = ids[: streams * per_stream].reshape(streams, per_stream)
    targets = ids[1 : streams * per_stream + 1].reshape(streams, per_stream)
    for start in range(0, per_stream - length + 1, length):
        chunk = slice(start, start + length)
        yield TokenBatch(inputs[:, chunk], torch.full((streams,), length), targets[:, chunk])


def test_char_language_model_shakespeare_with_truncated_bptt():
    """Char-level LM trained by TBPTT on the Shakespeare sample: held-out loss <= 2.3 nats/char,
    against 3.3 for the add-one unigram model of the training text."""
    torch.manual_seed(0)
    train = "\n".join(r.text for r in records("shakespeare", "train"))
    valid = "\n".join(r.text for r in records("shakespeare", "valid"))[:20000]
    vocab = Vocab.build([list(train)])
    ids = torch.tensor(vocab.encode(list(train)))
    config = models.LanguageModelConfig(
        vocab_size=len(vocab), embedding_size=32, hidden_size=128, cell="lstm"
    )
    model = models.LanguageModel(config)
    tbptt = models.TruncatedBPTTLoss()
    fit(model, _consecutive_chunks(ids, 32, 64), 150, 0.01, loss_fn=tbptt)
    held_out = torch.tensor(vocab.encode(list(valid)))
    with torch.no_grad():
        logits, _ = model(held_out[:-1].unsqueeze(0))  # one pass over 20k characters
    loss = float(torch.nn.functional.cross_entropy(logits[0], held_out[1:]))
    counts = torch.bincount(ids, minlength=len(vocab)).double() + 1
    unigram = float(-(counts / counts.sum())[held_out[1:]].log().mean())
    print(f"shakespeare char LM: held-out {loss:.3f} nats/char (unigram {unigram:.3f})")
    assert loss <= 2.3


def test_seq2seq_dates_normalisation():
    """Dates written in several languages → ISO dates, character level, Luong attention:
    greedy exact match >= 0.9 on 500 held-out pairs."""
    torch.manual_seed(0)
    train, valid = records("dates", "train"), records("dates", "valid")[:500]
    chars = CharTokenizer()
    source_vocab = Vocab.build(chars.encode(r.source) for r in train)
    target_vocab = Vocab.build(chars.encode(r.target) for r in train)

    def encode(pairs):
        return [
            (
                source_vocab.encode(chars.encode(r.source)),
                target_vocab.encode(chars.encode(r.target)),
            )
            for r in pairs
        ]

    def collate(examples):
        bos, eos = target_vocab.bos_id, target_vocab.eos_id
        return collate_pairs(examples, source_vocab.pad_id, bos, eos)

    config = models.Seq2SeqConfig(
        source_vocab_size=len(source_vocab), target_vocab_size=len(target_vocab),
        bos_id=target_vocab.bos_id, eos_id=target_vocab.eos_id, pad_id=target_vocab.pad_id,
        embedding_size=32, hidden_size=64, cell="gru", attention="luong_general",
    )  # fmt: skip
    model = models.Seq2Seq(config)
    fit(model, batched(encode(train), 64, collate), 160, 0.01)
    test = collate(encode(valid))
    decoded = model.greedy_decode(test.source, test.source_lengths, max_length=12)
    exact = np.mean([
        decoded.tokens[row, : int(decoded.lengths[row])].tolist()
        == test.target[row, 1 : int(test.target_lengths[row]) - 1].tolist()
        for row in range(len(valid))
    ])  # fmt: skip
    print(f"dates seq2seq: held-out exact match {exact:.3f}")
    assert exact >= 0.9


def test_conditional_generator_names_by_language():
    """Names generated from their language: held-out loss <= 2.5 nats/char with the true
    language, and at least 0.5 nats/char worse when the languages are shuffled."""
    torch.manual_seed(0)
    train, valid = records("names", "train"), records("names", "valid")
    vocab = Vocab.build(list(r.text) for r in train)
    labels = Vocab.build_labels(r.label for r in train)

    def encode(rs):
        return [(labels.lookup(r.label), vocab.encode(list(r.text))) for r in rs]

    def collate(examples):
        return collate_conditional(examples, vocab.pad_id, vocab.bos_id, vocab.eos_id)

    config = models.ConditionalGeneratorConfig(
        vocab_size=len(vocab), bos_id=vocab.bos_id, eos_id=vocab.eos_id,
        num_conditions=len(labels), embedding_size=32, hidden_size=64, cell="gru",
    )  # fmt: skip
    model = models.ConditionalGenerator(config)
    fit(model, batched(encode(train), 32, collate), 400, 0.01)
    test = collate(encode(valid))
    shuffled = test.condition[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        right = float(model.loss(test))
        wrong = float(model.loss(replace(test, condition=shuffled)))
    sample = "".join(vocab.decode(model.generate(labels.lookup("japanese"), 12, seed=0)))
    print(f"names generator: held-out {right:.3f} nats/char, shuffled {wrong:.3f}; ja: {sample}")
    assert right <= 2.5 and wrong - right >= 0.5


def _series(split: str) -> np.ndarray:
    return np.array([r.values for r in records("air_passengers", split)], dtype=np.float64)


def test_forecaster_air_passengers_beats_seasonal_naive():
    """Log AirPassengers, lookback 24 → the next 12 months: MAE on the valid year below the
    seasonal-naive forecast's (last year repeated). Scaling is fitted on the training years and
    stored in the config, so ``predict`` takes raw (log) values."""
    torch.manual_seed(0)
    train, valid = np.log(_series("train")), np.log(_series("valid"))
    scaler = StandardScaler().fit(train)
    history, future = sliding_windows(scaler.transform(train), lookback=24, horizon=12)
    config = models.ForecasterConfig(
        input_size=1, horizon=12, hidden_size=32, cell="gru",
        mean=scaler.mean.tolist(), std=scaler.std.tolist(),
    )  # fmt: skip
    model = models.Forecaster(config)
    fit(model, [collate_windows(history, future)], 300, 0.01)
    forecast = model.predict(torch.tensor(train[-24:, 0], dtype=torch.float32)).mean[0, :, 0]
    actual = np.exp(valid[:, 0])
    mae = float(np.abs(np.exp(forecast.numpy()) - actual).mean())
    seasonal_naive = float(np.abs(np.exp(train[-12:, 0]) - actual).mean())
    print(f"air passengers: MAE {mae:.1f} vs seasonal naive {seasonal_naive:.1f} passengers")
    assert mae < seasonal_naive
