"""Unseen tokens cannot dominate a language model's scores: they are counted, and left out of
the loss unless the model learned <unk> from rare training tokens."""

from __future__ import annotations

import logging
import random

import pytest
from tests.tasks.small_data import small_text

from rnnkit import tasks

UNSEEN = "~=+|"


def train_lm(tmp_path, name: str, *overrides: str):
    paths = small_text(tmp_path)
    config = tasks.load_config(None, [
        "task=language_model", f"data.train={paths['train']}", f"data.valid={paths['valid']}",
        "data.seq_len=16", "model.hidden_size=16", "model.num_layers=1",
        "model.embedding_size=8", "train.batch_size=4", "train.max_steps=30",
        "train.eval_every=30", "train.progress=false", "train.seed=0", *overrides])
    tasks.train(config, tmp_path / name)
    return tasks.load_run(tmp_path / name), paths


def inject(text: str, rate: float = 0.01, seed: int = 0) -> str:
    """``text`` with a symbol the training text never holds after ~``rate`` of its chars."""
    rng, out = random.Random(seed), []
    for char in text:
        out.append(char)
        if rng.random() < rate:
            out.append(rng.choice(UNSEEN))
    return "".join(out)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return train_lm(tmp_path_factory.mktemp("lm"), "lm")


def test_unseen_chars_are_counted_and_do_not_change_the_loss(lm, tmp_path):
    run, paths = lm
    clean = paths["valid"].read_text(encoding="utf-8")
    noisy = inject(clean)
    (tmp_path / "noisy.txt").write_text(noisy, encoding="utf-8")
    assert run.task.artifacts["train_unk_tokens"] == 0 and not run.task.unk_learned
    before = run.evaluate(paths["valid"])
    after = run.evaluate(tmp_path / "noisy.txt")
    injected = sum(noisy.count(c) for c in UNSEEN)
    assert injected > 5
    assert (before["oov_tokens"], after["oov_tokens"]) == (0, injected)
    assert after["oov_rate"] == pytest.approx(injected / len(noisy))
    # The unseen chars are left out of input and score: exactly the loss of the text without them.
    assert after["loss"] == pytest.approx(before["loss"], rel=1e-9)
    assert after["bpc"] == pytest.approx(before["bpc"], rel=1e-9)


def test_predict_reports_oov_per_line_and_scores_the_rest(lm):
    run, _ = lm
    plain, noisy = run.predict(["To be, or not to be", "To be, ~or not| to be"])
    assert (plain["oov"], noisy["oov"]) == (0, 2)
    assert noisy["loss"] == pytest.approx(plain["loss"], rel=1e-9)
    assert run.predict(["~|"])[0] == {"text": "~|", "loss": None, "perplexity": None, "oov": 2}


def test_generate_warns_about_unseen_prime_tokens_and_keeps_the_prime(lm, caplog):
    run, _ = lm
    caplog.set_level(logging.WARNING, logger="rnnkit.tasks")
    text = run.generate(prime="ROMEO~:", length=5, seed=0)
    assert text.startswith("ROMEO~:") and len(text) == len("ROMEO~:") + 5
    assert [r.getMessage() for r in caplog.records] == [
        "--prime: 1 token(s) never seen in training ('~') are left out of the model's input"]
    # Same continuation as the prime without the unseen char: the model never read it.
    assert text[len("ROMEO~:"):] == run.generate(prime="ROMEO:", length=5, seed=0)[6:]


def test_a_model_that_learned_unk_scores_unseen_chars_with_it(tmp_path):
    # min_freq=3 turns the rarest training chars into <unk>, so the model learns its probability.
    run, paths = train_lm(tmp_path, "capped", "data.min_freq=3")
    assert run.task.artifacts["train_unk_tokens"] > 0 and run.task.unk_learned
    clean = paths["valid"].read_text(encoding="utf-8")
    (tmp_path / "noisy.txt").write_text(inject(clean), encoding="utf-8")
    noisy = run.evaluate(tmp_path / "noisy.txt")
    assert noisy["oov_tokens"] > run.evaluate(paths["valid"])["oov_tokens"]
    assert noisy["loss"] != pytest.approx(run.evaluate(paths["valid"])["loss"], rel=1e-6)
