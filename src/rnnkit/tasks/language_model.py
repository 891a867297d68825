"""Language modelling over one long text (char-rnn style): truncated BPTT with the hidden state
carried across consecutive chunks; held-out loss, perplexity and bits per character."""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rnnkit.data import LanguageModelStream, Vocab
from rnnkit.data.errors import DataFormatError
from rnnkit.data.oov import ScoredIds, prepare_for_scoring
from rnnkit.data.text_ids import (
    count_chars,
    encode_chars,
    encode_tokens,
    iter_text_blocks,
    word_pieces,
)
from rnnkit.models import TruncatedBPTTLoss
from rnnkit.models._recurrent import detach_state
from rnnkit.tasks.base import (
    Task,
    model_device,
    progress_batches,
    summed_cross_entropy,
    vocab_json,
)
from rnnkit.tasks.config import RunConfig

EVAL_STREAMS = 64  # parallel streams when scoring held-out text (each starts from zeros)
PREDICT_CHUNK = 4096  # tokens per forward pass when scoring one long line (state carried)
WORD_COUNT_LIMIT = 1_000_000  # distinct words kept while counting, at least 20 * max_vocab
logger = logging.getLogger("rnnkit.tasks")


class LanguageModelTask(Task):
    """``data.train`` is plain UTF-8 text; tokens are characters (default) or words."""

    name = "language_model"
    model_type = "language_model"
    model_fields = ("tie_embeddings", "proj_size")
    use_command = "rnnkit generate {run_dir} --length 300"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "data": {"seq_len": 100},
        "model": {"hidden_size": 256, "num_layers": 2, "embedding_size": 64, "dropout": 0.1},
        "train": {"lr": 3e-3, "batch_size": 32, "max_time": 3.0, "eval_every": 100,
                  "schedule": "constant", "weight_decay": 0.0},
    }

    def tokens_of(self, text: str) -> list[str]:
        """Tokens of a whole text; word-level text keeps line breaks as ``<eos>`` tokens."""
        if self.tokenizer.name == "char":
            return list(text)
        return [t for line in text.splitlines() for t in [*self.tokenizer.encode(line), "<eos>"]]

    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> LanguageModelTask:
        """Count tokens in one streaming pass (bounded memory, see :mod:`rnnkit.data.text_ids`)
        and keep the vocabulary ``data.min_freq``/``data.max_vocab`` allow."""
        task = cls(config, {})
        counts = task.count_tokens(train_path)
        if not any(token.strip() for token in counts):
            raise DataFormatError(train_path, None, "file holds only whitespace")
        vocab = Vocab.from_counts(counts, config.data.min_freq, config.data.max_vocab)
        # Whether the model will see (and so learn) <unk>: decides how unseen tokens are scored.
        task.artifacts = {"vocab": vocab_json(vocab), "tokenizer": task.tokenizer.name,
                          "train_unk_tokens": sum(n for t, n in counts.items()
                                                  if t not in vocab.stoi)}
        return task

    def count_tokens(self, path: str | Path) -> Counter[str]:
        """Token counts of a text file. Words: when more than ``max(WORD_COUNT_LIMIT,
        20 * max_vocab)`` distinct words are held, the rarer half is dropped, so counting stays
        bounded (counts of words near the ``max_vocab`` cut are then approximate)."""
        blocks = iter_text_blocks(path, progress=None)
        if self.tokenizer.name == "char":
            return count_chars(blocks)
        limit = max(WORD_COUNT_LIMIT, 20 * (self.config.data.max_vocab or 0))
        counts: Counter[str] = Counter()
        for tokens in word_pieces(blocks, self.tokenizer.encode, "<eos>"):
            counts.update(tokens)
            if self.config.data.max_vocab is not None and len(counts) > limit:
                counts = Counter(dict(counts.most_common(limit // 2)))
        return counts

    def encode_file(self, path: str | Path) -> np.ndarray:
        """Token ids of a whole text file, streamed, in the vocabulary's compact dtype."""
        blocks = iter_text_blocks(path, progress=None)
        if self.tokenizer.name == "char":
            # A character takes at least one byte, so the file's size bounds their number.
            return encode_chars(blocks, self.vocab, capacity=Path(path).stat().st_size)
        return encode_tokens(word_pieces(blocks, self.tokenizer.encode, "<eos>"), self.vocab)

    @property
    def unk_learned(self) -> bool:
        """Whether ``<unk>`` occurred in the training text, so the model learned its
        probability (see :mod:`rnnkit.data.oov`)."""
        count = self.artifacts.get("train_unk_tokens")
        if count is None:  # a run of an older rnnkit: only a capped vocabulary makes <unk>
            return self.config.data.min_freq > 1 or self.config.data.max_vocab is not None
        return count > 0

    def scoreable(self, ids) -> ScoredIds:
        """``ids`` as the model scores them: OOV tokens counted, dropped unless learned."""
        return prepare_for_scoring(ids, self.vocab.unk_id, self.unk_learned)

    def read(self, path: str | Path) -> np.ndarray:
        ids = self.encode_file(path)
        if len(ids) < 2:
            raise DataFormatError(path, None, "expected at least 2 tokens of text")
        return ids

    def hold_out(self, examples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The last ``valid_fraction`` of the text (never shuffled: it is one stream)."""
        cut = int(len(examples) * (1 - self.config.data.valid_fraction))
        if cut < 2 or len(examples) - cut < 2:
            raise ValueError(f"data.valid_fraction: cannot cut {len(examples)} tokens")
        return examples[:cut], examples[cut:]

    def model_config(self) -> dict[str, Any]:
        return self.model_options(vocab_size=len(self.vocab))

    def train_source(self, examples: list[int], seed: int) -> LanguageModelStream:
        batch, seq_len = self.config.train.batch_size, self.config.data.seq_len
        return LanguageModelStream(examples, batch, seq_len, seed=seed, random_offset=True)

    def loss_fn(self) -> TruncatedBPTTLoss:
        return TruncatedBPTTLoss()

    def evaluate(self, model: nn.Module, examples: list[int], progress: bool = False):
        """Mean next-token loss over the whole text, state carried across chunks.

        ``loss``/``perplexity``/``bpc`` cover in-vocabulary tokens (and ``<unk>`` when the model
        learned it); ``oov_tokens``/``oov_rate`` count the tokens never seen in training."""
        scored = self.scoreable(examples)
        if len(scored.ids) < 2:
            raise ValueError(f"evaluate: {scored.oov} of {scored.total} tokens are out of "
                             "vocabulary, fewer than 2 tokens are left to score")
        streams = max(1, min(EVAL_STREAMS, (len(scored.ids) - 1) // self.config.data.seq_len))
        source = LanguageModelStream(scored.ids, streams, self.config.data.seq_len)
        device, state, total, count = model_device(model), None, 0.0, 0
        model.eval()
        with torch.no_grad():
            for batch in progress_batches(source.iter_epoch(0), len(source), progress, "evaluate"):
                batch = batch.to(device)
                logits, state = model(batch.tokens, batch.lengths, state)
                state = detach_state(state)
                loss, n = summed_cross_entropy(logits, batch.targets)
                total, count = total + loss, count + n
        nats = total / count
        return {"loss": nats, "perplexity": math.exp(min(nats, 50.0)), "bpc": nats / math.log(2),
                "oov_tokens": scored.oov, "oov_rate": scored.oov_rate}

    def predict(self, model: nn.Module, inputs: list[str]) -> list[dict[str, Any]]:
        """Per line: mean next-token loss (nats) and perplexity under the model, and ``oov``,
        the number of tokens never seen in training (scored as :meth:`evaluate` does)."""
        rows, vocab = [], self.vocab
        device = model_device(model)
        model.eval()
        for text in inputs:
            ids = (encode_chars(iter([text]), vocab) if self.tokenizer.name == "char" and text
                   else np.asarray(vocab.encode(self.tokens_of(text)), dtype=np.int64))
            scored = self.scoreable(ids)
            if len(scored.ids) < 2:
                rows.append({"text": text, "loss": None, "perplexity": None, "oov": scored.oov})
                continue
            total, count = self._score_line(model, scored.ids, device)
            rows.append({"text": text, "loss": total / count,
                         "perplexity": math.exp(min(total / count, 50.0)), "oov": scored.oov})
        return rows

    @staticmethod
    def _score_line(model: nn.Module, ids: np.ndarray, device) -> tuple[float, int]:
        """Summed next-token loss over ``ids`` in chunks of ``PREDICT_CHUNK`` with the state
        carried, so memory does not grow with the line's length."""
        state, total, count = None, 0.0, 0
        with torch.no_grad():
            for start in range(0, len(ids) - 1, PREDICT_CHUNK):
                piece = torch.as_tensor(ids[start:start + PREDICT_CHUNK + 1].astype(np.int64),
                                        device=device)
                logits, state = model(piece[None, :-1], None, state)
                loss, n = summed_cross_entropy(logits, piece[None, 1:])
                total, count = total + loss, count + n
        return total, count

    def generate(self, model: nn.Module, prime: str | None = None, length: int = 500,
                 condition: str | None = None, **sampling: Any) -> str:
        """``prime`` (default: a newline, else the first vocabulary token) plus ``length`` new
        tokens sampled with ``sampling`` (temperature, top_k, top_p, seed)."""
        if condition is not None:
            raise ValueError("--condition: only conditional_generation runs take a condition")
        vocab = self.vocab
        prime = prime if prime else ("\n" if "\n" in vocab else vocab.itos[len(vocab.specials)])
        # Specials never occur inside training text (a word model's EOS marks a line end).
        banned = [vocab.pad_id, vocab.unk_id, vocab.bos_id]
        if self.tokenizer.name == "char":
            banned.append(vocab.eos_id)
        scored = self.scoreable(vocab.encode(self.tokens_of(prime)))
        if scored.oov:
            unseen = sorted({t for t in self.tokens_of(prime) if t not in vocab.stoi})
            logger.warning("--prime: %d token(s) never seen in training (%s) %s", scored.oov,
                           ", ".join(repr(t) for t in unseen[:10]),
                           "are read as <unk>" if scored.unk_scored else "are left out of the "
                           "model's input")
        ids = model.generate(scored.ids.tolist() or [vocab.unk_id], length,
                             banned_ids=tuple(banned), **sampling)
        tokens = vocab.decode(ids)
        if self.tokenizer.name == "char":
            return prime + "".join(tokens)
        words = " ".join("\n" if t == "<eos>" else t for t in tokens)
        return prime + " " + words.replace(" \n ", "\n")
