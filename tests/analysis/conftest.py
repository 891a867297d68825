"""Shared fixtures: tiny trained runs (made once per session) for the report and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit import tasks


@pytest.fixture(autouse=True)
def _single_thread(single_thread):
    """Every test here runs on one thread (the root conftest's ``single_thread``)."""


def _train(config_path: str, out: Path, overrides: list[str]) -> Path:
    root = Path(__file__).resolve().parents[2]
    config = tasks.load_config(root / config_path, overrides)
    tasks.train(config, out)
    return out


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A char-level LSTM language model trained for 30 steps on the bundled ``hello`` toy."""
    out = tmp_path_factory.mktemp("runs") / "hello"
    return _train("examples/hello.toml", out, ["train.max_steps=30", "train.eval_every=15",
                                               "train.progress=false"])


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small bidirectional LSTM name classifier trained for 20 steps."""
    out = tmp_path_factory.mktemp("runs") / "names"
    return _train("examples/names_classification.yaml", out, [
        "model.hidden_size=16", "model.embedding_size=8", "train.max_steps=20",
        "train.eval_every=10", "train.progress=false", "data.eval_limit=200"])


@pytest.fixture(scope="session")
def seq2seq_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small attention seq2seq model (date normalisation) trained for 15 steps."""
    out = tmp_path_factory.mktemp("runs") / "dates"
    return _train("examples/dates_seq2seq.yaml", out, [
        "model.hidden_size=16", "train.max_steps=15", "train.eval_every=15",
        "train.progress=false", "data.eval_limit=50"])


@pytest.fixture(scope="session")
def forecast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Gaussian forecaster on the AirPassengers sample trained for 15 steps."""
    out = tmp_path_factory.mktemp("runs") / "air"
    return _train("examples/air_passengers.yaml", out, [
        "train.max_steps=15", "train.eval_every=15", "train.progress=false"])
