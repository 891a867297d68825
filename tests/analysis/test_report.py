"""The run report: one self-contained page whose sections fail alone, with a reason."""

from __future__ import annotations

import re
import shutil

import pytest

from rnnkit.analysis.report import build_report

SECTIONS = ["Overview", "Configuration", "Training and validation curves",
            "Gradient-norm history", "Gradient flow through time at the end of training",
            "Recurrent spectrum", "Hidden states", "Samples"]


def _check_self_contained(page: str) -> list[str]:
    assert not re.search(r"https?://", page), "the page must not reference the network"
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    return sources


def test_language_model_report(lm_run):
    page_path = build_report(lm_run)
    page = page_path.read_text(encoding="utf-8")
    assert page_path == lm_run / "report.html"
    _check_self_contained(page)
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    assert "Not available" not in page
    assert "Generated text, temperature 0.5" in page
    assert "inside_quotes" in page or "newline" in page  # the char-feature unit table
    assert (lm_run / "report_images" / "gradient_flow.png").is_file()


def test_classifier_report_has_confusion_matrix(classifier_run):
    page = build_report(classifier_run).read_text(encoding="utf-8")
    _check_self_contained(page)
    assert "Confusion matrix" in page and "Not available" not in page


def test_missing_pieces_are_explained_in_the_page(lm_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(lm_run, broken)
    (broken / "metrics.csv").unlink()
    (broken / "task.json").unlink()
    for path in (broken / "checkpoints").rglob("metadata.json"):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"task": "language_model"', '"task": "unknown"'))
    page = build_report(broken).read_text(encoding="utf-8")
    _check_self_contained(page)  # the spectrum section needs the weights only
    assert page.count("Not available") >= 3
    assert "metrics.csv: no metrics log" in page
    assert "W_hh" in page


@pytest.mark.slow
def test_seq2seq_report_has_attention_maps(seq2seq_run):
    page = build_report(seq2seq_run).read_text(encoding="utf-8")
    _check_self_contained(page)
    assert "Not available" not in page
    assert "Attention weights for" in page
    assert (seq2seq_run / "report_images" / "attention_0.png").is_file()


@pytest.mark.slow
def test_forecast_report_uses_a_long_enough_series(forecast_run):
    # the validation file is shorter than one window; the report falls back to another file
    page = build_report(forecast_run).read_text(encoding="utf-8")
    _check_self_contained(page)
    assert "Not available" not in page
    assert (forecast_run / "report_images" / "forecast.png").is_file()


@pytest.mark.slow
def test_analyze_attention_view(seq2seq_run, tmp_path):
    from rnnkit.analysis.cli_views import attention_view

    rows, written = attention_view(seq2seq_run, None, tmp_path)
    assert len(rows) == len(written) == 4
    assert all(0.0 < row["mean_max_weight"] <= 1.0 for row in rows)
