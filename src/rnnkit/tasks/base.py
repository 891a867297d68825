"""What every task provides, and the helpers the token tasks share.

A :class:`Task` is the glue between a :class:`~rnnkit.tasks.config.RunConfig` and the library:
it reads the task's files, fits what must be fitted on training data (vocabularies, label
maps, scaling) into JSON-able ``artifacts``, builds the model, the batch source, the loss and
the metrics, and turns model outputs into predictions. ``artifacts`` are stored in every
checkpoint's metadata, so a run directory is all that inference needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from rnnkit.data import (
    DataFormatError,
    Vocab,
    WordTokenizer,
    get_tokenizer,
    pad_sequences,
    split_indices,
)
from rnnkit.errors import RnnkitError
from rnnkit.models import build_model
from rnnkit.tasks.config import RunConfig
from rnnkit.tasks.data_files import open_reader
from rnnkit.tasks.errors import ConfigError, TaskMismatchError

EVAL_BATCH = 256
"""Examples per forward pass when a task scores or predicts (memory, not results, depends on it)."""

COMMON_MODEL_FIELDS = (
    "cell", "hidden_size", "num_layers", "dropout", "recurrent_dropout", "zoneout", "layer_norm",
)


PredictInput = Literal["lines", "text_column", "source_column", "conll", "series"]


class Task:
    """Base class; subclasses set the class attributes and override the methods."""

    name: ClassVar[str]
    model_type: ClassVar[str]
    monitor: ClassVar[str] = "valid_loss"
    monitor_mode: ClassVar[str] = "min"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    model_fields: ClassVar[tuple[str, ...]] = ()  # task-specific ModelConfig fields it accepts
    default_tokenizer: ClassVar[str] = "char"
    # how a trained run of this task is used, for the commands suggested after training
    use_command: ClassVar[str] = "rnnkit predict {run_dir} --input <file>"
    # What `rnnkit predict` reads: "lines" (one example a line), "text_column" (a CSV/TSV's
    # data.text_column, else lines), "source_column" (the first tab-separated field), "conll"
    # (a CoNLL file's sentences, else lines) or "series" (a file read by :meth:`read`).
    predict_input: ClassVar[PredictInput] = "lines"
    # keyword options :meth:`predict` takes beyond the inputs (e.g. "samples", "beam_size")
    predict_options: ClassVar[frozenset[str]] = frozenset()
    supports_backtest: ClassVar[bool] = False  # rolling-origin evaluation (`rnnkit backtest`)

    def __init__(self, config: RunConfig, artifacts: dict[str, Any]) -> None:
        self.config = config
        self.artifacts = artifacts

    @property
    def tokenizer(self):
        """``data.tokenizer``, or the task's default for ``auto``."""
        return tokenizer_for(self.config, self.default_tokenizer)

    def tokens_of(self, text: str) -> list[str]:
        """Tokens of ``text``, truncated to ``data.max_length``."""
        return truncate(self.tokenizer.encode(text), self.config.data.max_length)

    @property
    def vocab(self) -> Vocab:
        """The token vocabulary fitted on the training data."""
        return vocab_from(self.artifacts, "vocab")

    @property
    def labels(self) -> Vocab:
        """Class labels (no specials; sorted, so ids are stable)."""
        return Vocab(self.artifacts["labels"], specials=())

    @classmethod
    def next_commands(cls, run_dir: Path) -> list[str]:
        """Commands to run next on ``run_dir``, a trained run of this task."""
        return [cls.use_command.format(run_dir=run_dir),
                f"rnnkit evaluate {run_dir} --data <file in the training format>",
                f"rnnkit export {run_dir} --format onnx"]

    def export_options(self) -> dict[str, Any]:
        """Keyword arguments :func:`rnnkit.models.export.export_model` needs for this run's
        model beyond the model, path and format; default: none."""
        return {}

    # ----------------------------------------------------------------- fitting and data
    @classmethod
    def fit(cls, config: RunConfig, train_path: Path) -> Task:
        """Read the training file and fit the artifacts (vocabularies, labels, scaling)."""
        raise NotImplementedError

    def read(self, path: str | Path) -> Any:
        """The examples of ``path`` in the form :meth:`train_source`/:meth:`evaluate` take."""
        raise NotImplementedError

    def hold_out(self, examples: Any) -> tuple[Any, Any]:
        """Split ``examples`` into (train, valid) when no validation file is given."""
        fraction = self.config.data.valid_fraction
        if not 0 < fraction < 1:
            raise ConfigError(f"data.valid_fraction: expected a number in (0, 1), got {fraction}")
        split = split_indices(len(examples), (1 - fraction, fraction, 0.0), self.config.train.seed)
        if len(split.valid) == 0 or len(split.train) == 0:
            raise ConfigError(
                f"data.valid: {len(examples)} examples are too few to hold out "
                f"valid_fraction={fraction}; give a validation file"
            )
        return [examples[i] for i in split.train], [examples[i] for i in split.valid]

    def limit(self, examples: Any) -> Any:
        """The first ``data.eval_limit`` examples (all when unset)."""
        limit = self.config.data.eval_limit
        return examples if limit is None else examples[:limit]

    def fit_on_split(self, train: Any, valid: Any) -> None:
        """Fit what needs the final training part (e.g. scaling); default: nothing."""

    def finish_training(self, checkpoint: Path,
                        notice: Callable[[str], None] | None = None) -> None:
        """After training, adjust the ``checkpoint`` the run will use (``best``, else ``last``)
        with what is fitted once on a trained model (e.g. interval calibration); ``notice``
        receives one-line notes of long steps; default: nothing."""

    # ----------------------------------------------------------------------- the model
    def model_config(self) -> dict[str, Any]:
        """The ``rnnkit.models`` config dict for this task (sizes from the artifacts)."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        """A fresh model from the ``model`` section and the artifacts."""
        try:
            return build_model(self.model_type, self.model_config())
        except RnnkitError:  # already names what to fix (and may not take a bare message)
            raise
        except (TypeError, ValueError) as error:
            raise type(error)(f"model: {error}") from error

    def model_options(self, **task_values: Any) -> dict[str, Any]:
        """Common ``model`` fields, the task's own fields that are set, and ``task_values``."""
        model = self.config.model
        options = {name: getattr(model, name) for name in COMMON_MODEL_FIELDS}
        for name in self.model_fields:
            value = getattr(model, name)
            if value is not None and name not in ("beam_size", "length_penalty"):
                options[name] = value
        if model.embedding_size is not None:
            options["embedding_size"] = model.embedding_size
        return {**options, **task_values}

    def train_source(self, examples: Any, seed: int) -> Any:
        """The training batch source (``iter_epoch``/``len``)."""
        raise NotImplementedError

    def loss_fn(self) -> Callable | None:
        """A loss function for the trainer, or ``None`` for ``model.loss``."""
        return None

    def evaluate(self, model: nn.Module, examples: Any, progress: bool = False) -> dict[str, float]:
        """The task's metrics on ``examples`` (keys listed in the issue/README)."""
        raise NotImplementedError

    def predict(self, model: nn.Module, inputs: list[str]) -> list[dict[str, Any]]:
        """One output record per input (a text line, or a series for forecasting)."""
        raise NotImplementedError

    def generate(self, model: nn.Module, **options: Any) -> str:
        """Sample text; only generative tasks implement it."""
        raise TaskMismatchError(
            f"generate: the run's task is {self.name}, which does not generate text; "
            "use `rnnkit predict` (generate works for language_model and conditional_generation)"
        )


# ------------------------------------------------------------------------ token helpers
def tokenizer_for(config: RunConfig, default: str):
    """The configured tokenizer (``auto`` → ``default``), honouring ``data.lowercase``."""
    name = config.data.tokenizer if config.data.tokenizer != "auto" else default
    if name == "word":
        return WordTokenizer(lowercase=config.data.lowercase)
    return get_tokenizer(name)


def truncate(tokens: list[str], max_length: int | None) -> list[str]:
    """The first ``max_length`` tokens (all when ``None``)."""
    return tokens if max_length is None else tokens[:max_length]


def build_vocab(config: RunConfig, sequences: Iterable[Iterable[str]]) -> Vocab:
    """A token vocabulary with the configured ``min_freq`` and ``max_vocab``."""
    return Vocab.build(sequences, min_freq=config.data.min_freq, max_size=config.data.max_vocab)


def vocab_from(artifacts: dict[str, Any], key: str) -> Vocab:
    """A vocabulary stored in ``artifacts`` (``{"specials", "tokens"}``)."""
    return Vocab.from_json(json.dumps(artifacts[key]))


def vocab_json(vocab: Vocab) -> dict[str, Any]:
    """The JSON-able form :func:`vocab_from` reads."""
    return {"specials": list(vocab.specials), "tokens": list(vocab.itos)}


def label_id(labels: Vocab, label: str, path: Path | str, line: int) -> int:
    """The id of ``label``; a label never seen in training is a data error at ``path:line``."""
    if label not in labels:
        raise DataFormatError(
            path, line, f"label {label!r} does not occur in the training data "
            f"(known: {', '.join(labels.itos[:20])}{', ...' if len(labels) > 20 else ''})"
        )
    return labels.stoi[label]


def read_records(config: RunConfig, task: str, path: str | Path) -> list[Any]:
    """All records of ``path`` read with the task's reader."""
    return open_reader(task, config.data, path).read()


def progress_batches(batches: Iterator[Any], total: int, progress: bool, desc: str):
    """Wrap ``batches`` in a progress bar on stderr when ``progress``."""
    return tqdm(batches, total=total, desc=desc, disable=not progress, leave=False, unit="batch")


def batched_outputs(model: nn.Module, token_lists: list[list[int]], pad_id: int,
                    progress: bool = False, batch_size: int = 256) -> list[tuple]:
    """``model(tokens, lengths)`` over ``token_lists`` in padded batches (eval mode, no grad):
    a list of (outputs on CPU, lengths) per batch, in input order."""
    device, outputs = model_device(model), []
    starts = range(0, len(token_lists), batch_size)
    model.eval()
    with torch.no_grad():
        for start in progress_batches(iter(starts), len(starts), progress, "evaluate"):
            tokens, lengths = pad_sequences(token_lists[start:start + batch_size], pad_id)
            outputs.append((model(tokens.to(device), lengths).cpu(), lengths))
    return outputs


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters live."""
    return next(model.parameters()).device


def summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """Sum of cross-entropy over scored positions (targets ≠ ignore) and their count."""
    flat_targets = targets.reshape(-1)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), flat_targets, ignore_index=-100, reduction="sum"
    )
    return float(loss), int((flat_targets != -100).sum())
