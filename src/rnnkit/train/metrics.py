"""Evaluation metrics for every task shape, as pure functions returning Python floats.

Inputs may be tensors, NumPy arrays or plain sequences. Classification metrics take predicted
class ids (take ``argmax`` of logits first). Text metrics take detokenised strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

IGNORE_INDEX = -100
"""Target value of padded positions (same as ``rnnkit.data.batch`` and ``F.cross_entropy``)."""


def _as_ids(name: str, values: Any) -> torch.Tensor:
    tensor = torch.as_tensor(values)
    if tensor.numel() and (tensor.is_floating_point() or tensor.is_complex()):
        raise TypeError(f"{name}: expected integer class ids, got a {tensor.dtype} tensor")
    return tensor.long()


def _check_pair(names: tuple[str, str], predicted: torch.Tensor, target: torch.Tensor) -> None:
    """Same shape, not empty; errors name the argument (``names``: predicted's, target's)."""
    if predicted.shape != target.shape:
        raise ValueError(
            f"{names[0]}: expected the shape of {names[1]} {tuple(target.shape)}, "
            f"got {tuple(predicted.shape)}"
        )
    if target.numel() == 0:
        raise ValueError(f"{names[1]}: expected at least one item to score, got none")


def _paired_ids(predictions: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor]:
    predicted, target = _as_ids("predictions", predictions), _as_ids("targets", targets)
    _check_pair(("predictions", "targets"), predicted, target)
    return predicted.reshape(-1), target.reshape(-1)


def accuracy(predictions: Any, targets: Any) -> float:
    """Fraction of items whose predicted class id equals the target, in ``[0, 1]``.

    ``predictions`` and ``targets``: integer ids of the same shape, e.g. ``(batch,)``.
    """
    predicted, target = _paired_ids(predictions, targets)
    return float((predicted == target).double().mean())


def macro_f1(predictions: Any, targets: Any, labels: Sequence[int] | None = None) -> float:
    """Unweighted mean over classes of F1 = 2·TP / (2·TP + FP + FN), in ``[0, 1]``.

    Averages over ``labels`` if given, else over every class that occurs in the predictions or
    the targets; classes absent from both are left out. A class whose F1 denominator is zero
    scores 0. This matches ``sklearn.metrics.f1_score(average="macro", zero_division=0)``.
    """
    predicted, target = _paired_ids(predictions, targets)
    classes = (
        torch.unique(torch.cat([predicted, target]))
        if labels is None
        else torch.as_tensor(list(labels), dtype=torch.long)
    )
    if classes.numel() == 0:
        raise ValueError("labels: expected at least one class, got none")
    scores = []
    for label in classes:
        true_positive = ((predicted == label) & (target == label)).sum().item()
        false_positive = ((predicted == label) & (target != label)).sum().item()
        false_negative = ((predicted != label) & (target == label)).sum().item()
        denominator = 2 * true_positive + false_positive + false_negative
        scores.append(2 * true_positive / denominator if denominator else 0.0)
    return sum(scores) / len(scores)


def token_accuracy(predictions: Any, targets: Any, ignore_index: int = IGNORE_INDEX) -> float:
    """Fraction of scored tokens predicted right; positions whose target is ``ignore_index``
    (padding) are skipped.

    ``predictions`` and ``targets``: ``(batch, seq)`` integer ids (any equal shapes work).
    """
    predicted, target = _paired_ids(predictions, targets)
    scored = target != ignore_index
    if not scored.any():
        raise ValueError(f"targets: every position equals ignore_index={ignore_index}")
    return float((predicted[scored] == target[scored]).double().mean())


def _finite_nats(mean_nats: Any) -> float:
    value = float(mean_nats)
    if math.isnan(value) or value < 0:
        raise ValueError(f"mean_nats: expected a mean cross-entropy >= 0 in nats, got {value}")
    return value


def perplexity(mean_nats: Any) -> float:
    """``exp(mean_nats)``: perplexity from a mean cross-entropy in nats per token."""
    return math.exp(_finite_nats(mean_nats))


def bits_per_character(mean_nats: Any) -> float:
    """``mean_nats / ln 2``: bits per character from a mean cross-entropy in nats per char."""
    return _finite_nats(mean_nats) / math.log(2)


def _paired_texts(hypotheses: Sequence[Any], references: Sequence[Any]) -> None:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses/references: expected sequences of items, got a single str")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses: expected as many as references ({len(references)}), got {len(hypotheses)}"
        )
    if not hypotheses:
        raise ValueError("references: expected at least one item to score, got none")


def exact_match(hypotheses: Sequence[Any], references: Sequence[Any]) -> float:
    """Fraction of hypotheses equal to their reference (strings or token lists), in ``[0, 1]``."""
    _paired_texts(hypotheses, references)
    return sum(h == r for h, r in zip(hypotheses, references, strict=True)) / len(references)


def _sacrebleu() -> Any:
    try:
        import sacrebleu
    except ImportError as error:
        raise ImportError("BLEU and chrF need sacrebleu: pip install sacrebleu") from error
    return sacrebleu


def bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (0–100) of detokenised strings, one reference each, as sacrebleu computes it
    by default: n-grams up to 4 summed over the corpus (not averaged per sentence), brevity
    penalty, ``exp`` smoothing of zero n-gram counts, ``13a`` tokenisation."""
    _paired_texts(hypotheses, references)
    return float(
        _sacrebleu().corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize).score
    )


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0–100; character 6-grams, beta 2) computed by sacrebleu."""
    _paired_texts(hypotheses, references)
    return float(_sacrebleu().corpus_chrf(list(hypotheses), [list(references)]).score)


def _paired_values(forecast: Any, actual: Any) -> tuple[torch.Tensor, torch.Tensor]:
    predicted = torch.as_tensor(forecast, dtype=torch.float64)
    target = torch.as_tensor(actual, dtype=torch.float64)
    _check_pair(("forecast", "actual"), predicted, target)
    return predicted, target


def mae(forecast: Any, actual: Any) -> float:
    """Mean absolute error over every element; ``forecast`` and ``actual`` have equal shapes,
    e.g. ``(batch, horizon, targets)``."""
    predicted, target = _paired_values(forecast, actual)
    return float((predicted - target).abs().mean())


def rmse(forecast: Any, actual: Any) -> float:
    """Root mean squared error over every element (shapes as :func:`mae`)."""
    predicted, target = _paired_values(forecast, actual)
    return float((predicted - target).pow(2).mean().sqrt())


def smape(forecast: Any, actual: Any) -> float:
    """Symmetric MAPE on the 0–200 scale: ``200/n · Σ |F - A| / (|A| + |F|)``.

    Terms where ``|A| + |F| = 0`` (both exactly zero, a perfect forecast) count as 0.
    """
    predicted, target = _paired_values(forecast, actual)
    denominator = target.abs() + predicted.abs()
    terms = torch.where(
        denominator > 0,
        (predicted - target).abs() / denominator.clamp_min(torch.finfo(torch.float64).tiny),
        torch.zeros_like(denominator),
    )
    return float(200 * terms.mean())


def _training_series(train_series: Any, season: int) -> torch.Tensor:
    series = torch.as_tensor(train_series, dtype=torch.float64)
    if series.ndim not in (1, 2):
        raise ValueError(
            f"train_series: expected shape (time,) or (time, features), got {tuple(series.shape)}"
        )
    if not isinstance(season, int) or isinstance(season, bool) or season < 1:
        raise ValueError(f"season: expected an integer >= 1, got {season!r}")
    if series.shape[0] <= season:
        raise ValueError(
            f"train_series: expected more than season={season} time steps, got {series.shape[0]}"
        )
    return series


def seasonal_naive_forecast(train_series: Any, horizon: int, season: int = 1) -> torch.Tensor:
    """Repeat the last ``season`` observed values: forecast at ``T + h`` is ``y[T + h - m·k]``
    for the smallest ``k`` that lands in the training series.

    ``train_series``: ``(time,)`` or ``(time, features)``; returns ``(horizon,)`` or
    ``(horizon, features)`` float64.
    """
    series = _training_series(train_series, season)
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon: expected an integer >= 1, got {horizon!r}")
    last_season = series[-season:]
    index = torch.arange(horizon) % season
    return last_season[index]


def mase(forecast: Any, actual: Any, train_series: Any, season: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler, 2006).

    ``MASE = MAE(forecast, actual) / mean_t |y_t - y_(t-m)|`` where the denominator is the
    in-sample MAE of the seasonal-naive forecast with season ``m`` on ``train_series``. Below 1
    beats seasonal naive. With ``(time, features)`` training data, ``forecast``/``actual`` end in
    ``features`` and the result is the mean of the per-feature MASEs.
    """
    predicted, target = _paired_values(forecast, actual)
    series = _training_series(train_series, season)
    scale = (series[season:] - series[:-season]).abs().mean(dim=0)
    if bool((scale == 0).any()):
        raise ValueError(
            f"train_series: its seasonal-naive error (season={season}) is zero, so MASE is "
            "undefined (the training series repeats exactly)"
        )
    errors = (predicted - target).abs()
    if series.ndim == 2:
        if target.shape[-1] != series.shape[1]:
            raise ValueError(
                f"actual: expected a last dimension of {series.shape[1]} features, "
                f"got shape {tuple(target.shape)}"
            )
        return float((errors.reshape(-1, series.shape[1]).mean(dim=0) / scale).mean())
    return float(errors.mean() / scale)


def _span_key(span: Any) -> tuple[str, int, int]:
    """``(type, start, end)`` of a span given as a tuple or an object with those attributes."""
    if isinstance(span, tuple):
        return (str(span[0]), int(span[1]), int(span[2]))
    return (str(span.type), int(span.start), int(span.end))


def _prf(correct: int, found: int, gold: int) -> dict[str, float]:
    precision = correct / found if found else 0.0
    recall = correct / gold if gold else 0.0
    total = precision + recall
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / total if total else 0.0}


def entity_scores(predicted: Sequence[Any], gold: Sequence[Any]) -> dict[str, Any]:
    """Entity-level precision, recall and F1 as conlleval computes them: a predicted entity is
    correct when its type, start and end all equal a gold entity's.

    ``predicted`` and ``gold``: one collection of spans per sentence (same number of
    sentences), each span ``(type, start, end)`` or an object with those attributes (e.g.
    :class:`rnnkit.data.spans.Span`). Returns fractions in ``[0, 1]``: ``precision``,
    ``recall``, ``f1`` (micro: over all entities), ``macro_precision``/``macro_recall``/
    ``macro_f1`` (unweighted means over the types found in either side), counts ``found``,
    ``gold``, ``correct``, and ``per_type``: ``{type: {precision, recall, f1, found, gold,
    correct}}``. Nothing found scores precision 0; no gold entity scores recall 0.
    """
    if isinstance(predicted, str) or isinstance(gold, str):
        raise TypeError("predicted/gold: expected one collection of spans per sentence, got a str")
    if len(predicted) != len(gold):
        raise ValueError(
            f"predicted: expected as many sentences as gold ({len(gold)}), got {len(predicted)}"
        )
    counts: dict[str, list[int]] = {}  # type -> [correct, found, gold]
    for sentence_predicted, sentence_gold in zip(predicted, gold, strict=True):
        found = {_span_key(s) for s in sentence_predicted}
        truth = {_span_key(s) for s in sentence_gold}
        for span in found | truth:
            entry = counts.setdefault(span[0], [0, 0, 0])
            entry[0] += span in found and span in truth
            entry[1] += span in found
            entry[2] += span in truth
    totals = [sum(entry[i] for entry in counts.values()) for i in range(3)]
    per_type = {kind: {**_prf(*entry), "correct": entry[0], "found": entry[1], "gold": entry[2]}
                for kind, entry in sorted(counts.items())}
    result: dict[str, Any] = _prf(*totals)
    for name in ("precision", "recall", "f1"):
        values = [scores[name] for scores in per_type.values()]
        result[f"macro_{name}"] = sum(values) / len(values) if values else 0.0
    result.update(correct=totals[0], found=totals[1], gold=totals[2], per_type=per_type)
    return result
