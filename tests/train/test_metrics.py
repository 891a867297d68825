"""Metrics against hand-computed values and reference implementations (sacrebleu, NumPy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sacrebleu
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.train import metrics


def test_accuracy_by_hand():
    assert metrics.accuracy([0, 1, 2, 2], [0, 2, 2, 1]) == 0.5
    assert metrics.accuracy(torch.tensor([[1, 1], [0, 1]]), torch.tensor([[1, 1], [0, 1]])) == 1.0


def test_macro_f1_by_hand():
    # class 0: F1 1; class 1: TP 0 -> 0; class 2: 2*1 / (2*1 + 1 + 1) = 0.5
    assert metrics.macro_f1([0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx(0.5)


def test_macro_f1_zero_division_like_sklearn():
    # class 3 is only predicted, class 1 only a target: both score 0, both count.
    assert metrics.macro_f1([0, 0, 3], [0, 0, 1]) == pytest.approx(1 / 3)
    # With explicit labels a class absent from both (2) scores 0 and counts; 3 is left out.
    assert metrics.macro_f1([0, 0, 3], [0, 0, 1], labels=[0, 1, 2]) == pytest.approx(1 / 3)
    assert metrics.macro_f1([1, 1], [1, 1]) == 1.0


def _reference_macro_f1(predicted: np.ndarray, target: np.ndarray) -> float:
    """Per-class precision and recall (0 when undefined), F1 = 2PR / (P + R) (0 when P+R=0)."""
    scores = []
    for label in np.union1d(predicted, target):
        tp = np.sum((predicted == label) & (target == label))
        precision = tp / np.sum(predicted == label) if np.sum(predicted == label) else 0.0
        recall = tp / np.sum(target == label) if np.sum(target == label) else 0.0
        total = precision + recall
        scores.append(2 * precision * recall / total if total else 0.0)
    return float(np.mean(scores))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=40),
)
def test_macro_f1_matches_the_precision_recall_definition(pairs):
    predicted, target = (np.array(column) for column in zip(*pairs, strict=True))
    assert metrics.macro_f1(predicted, target) == pytest.approx(
        _reference_macro_f1(predicted, target)
    )
    assert metrics.accuracy(predicted, target) == pytest.approx(np.mean(predicted == target))


def test_token_accuracy_skips_padding():
    predicted = torch.tensor([[1, 2, 3], [4, 5, 6]])
    target = torch.tensor([[1, 0, -100], [4, -100, -100]])
    assert metrics.token_accuracy(predicted, target) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="ignore_index"):
        metrics.token_accuracy([[1]], [[-100]])


def test_perplexity_and_bits_per_character():
    assert metrics.perplexity(math.log(5)) == pytest.approx(5)
    assert metrics.perplexity(torch.tensor(0.0)) == 1.0
    assert metrics.bits_per_character(1.5 * math.log(2)) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="mean_nats"):
        metrics.perplexity(float("nan"))


def test_exact_match():
    assert metrics.exact_match(["a", "b", "c"], ["a", "x", "c"]) == pytest.approx(2 / 3)
    assert metrics.exact_match([["a", "b"]], [["a", "b"]]) == 1.0
    with pytest.raises(ValueError, match="hypotheses"):
        metrics.exact_match(["a"], ["a", "b"])


def test_bleu_by_hand():
    # Matches 5/6 unigrams, 3/5 bigrams, 1/4 trigrams, 0/3 4-grams; sacrebleu's exp smoothing
    # makes the last 1 / (2 * 3); equal lengths, so no brevity penalty.
    score = metrics.bleu(["the cat is on the mat"], ["the cat sat on the mat"])
    assert score == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25)
    assert metrics.bleu(["a b c d e"], ["a b c d e"]) == pytest.approx(100)


def test_bleu_and_chrf_are_corpus_level_and_match_sacrebleu():
    hypotheses = ["the cat is on the mat", "there is a dog in the garden", "hello"]
    references = ["the cat sat on the mat", "a dog is in the garden", "hello world"]
    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert metrics.bleu(hypotheses, references) == pytest.approx(bleu)
    sentence_mean = np.mean(
        [sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hypotheses, references, strict=True)]
    )
    assert not math.isclose(bleu, sentence_mean)
    assert metrics.chrf(hypotheses, references) == pytest.approx(
        sacrebleu.corpus_chrf(hypotheses, [references]).score
    )
    assert metrics.chrf(["abc def"], ["abc def"]) == pytest.approx(100)
    assert metrics.chrf(["xyz"], ["abc"]) == 0.0


def test_mae_rmse_by_hand():
    assert metrics.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert metrics.rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))
    with pytest.raises(ValueError, match="forecast"):
        metrics.mae([1, 2], [1, 2, 3])


def test_smape_by_hand_and_against_numpy():
    # terms: |1-2|/(2+1) = 1/3; 0; both zero -> 0.  200/3 * 1/3
    assert metrics.smape([1, 2, 0], [2, 2, 0]) == pytest.approx(200 / 9)
    rng = np.random.default_rng(0)
    forecast, actual = rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 6, 2))
    reference = 200 * np.mean(np.abs(forecast - actual) / (np.abs(actual) + np.abs(forecast)))
    assert metrics.smape(forecast, actual) == pytest.approx(reference)
    assert metrics.smape([5.0], [-5.0]) == pytest.approx(200)


def test_mase_by_hand():
    train = [1, 3, 2, 4, 3, 5]  # in-sample naive MAE (m=1): mean(2,1,2,1,2) = 1.6
    assert metrics.mase([6, 6], [5, 7], train) == pytest.approx(1 / 1.6)
    assert metrics.mase([6, 6], [5, 7], train, season=2) == pytest.approx(1.0)  # scale 1
    with pytest.raises(ValueError, match="season"):
        metrics.mase([1], [1], train, season=6)
    with pytest.raises(ValueError, match="zero"):
        metrics.mase([1], [1], [2, 2, 2])


def test_mase_multivariate_is_the_mean_of_per_feature_mases():
    train = np.array([[1.0, 10.0], [2.0, 30.0], [4.0, 20.0]])  # scales 1.5 and 15
    forecast = np.array([[[5.0, 20.0], [6.0, 20.0]]])  # (batch, horizon, features)
    actual = np.array([[[6.0, 35.0], [6.0, 20.0]]])
    expected = ((1 + 0) / 2 / 1.5 + (15 + 0) / 2 / 15) / 2
    assert metrics.mase(forecast, actual, train) == pytest.approx(expected)


def test_seasonal_naive_forecast_and_its_mase():
    series = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    forecast = metrics.seasonal_naive_forecast(series, horizon=5, season=3)
    assert forecast.tolist() == [4.0, 5.0, 6.0, 4.0, 5.0]
    # Forecasting the next season of a pure seasonal pattern with seasonal naive is exact.
    pattern = np.tile([1.0, 5.0, 2.0], 4)
    naive = metrics.seasonal_naive_forecast(pattern[:9], horizon=3, season=3)
    assert metrics.mase(naive, pattern[9:], pattern[:9] + np.arange(9), season=3) == 0.0


def test_class_metrics_reject_float_ids_and_bad_shapes():
    with pytest.raises(TypeError, match="predictions"):
        metrics.accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="predictions: expected the shape"):
        metrics.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="targets: expected at least one"):
        metrics.macro_f1([], [])
