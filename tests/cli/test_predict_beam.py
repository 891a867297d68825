"""predict --beam-size/--n-best on a seq2seq run; evaluate's bar stays off a piped stderr."""

from __future__ import annotations

import json

from tests.cli.conftest import write
from tests.tasks.small_data import small_copy

QUICK = ["--set", "train.max_steps=3", "--set", "train.eval_every=3", "--no-progress"]
SOURCES = "24 gennaio 2035\n3 marzo 1999\n"


def _rows(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_n_best_rows_are_ranked_and_the_first_is_the_beam_output(cli, tmp_path):
    paths = small_copy("dates", tmp_path, {"train": 200, "valid": 30}, header=False)
    config = write(tmp_path / "dates.yaml", f"task: seq2seq\ndata: {{train: {paths['train']}, "
                   f"valid: {paths['valid']}}}\nmodel: {{hidden_size: 16, embedding_size: 8}}\n")
    assert cli("train", config, "--out", "s2s", *QUICK).exit_code == 0
    rows = _rows(cli("predict", "s2s", "--beam-size", "3", "--n-best", "3", input=SOURCES))
    assert [(r["source"], r["rank"]) for r in rows] == [
        ("24 gennaio 2035", 1), ("24 gennaio 2035", 2), ("24 gennaio 2035", 3),
        ("3 marzo 1999", 1), ("3 marzo 1999", 2), ("3 marzo 1999", 3)]
    for first in (0, 3):  # length_penalty 0: ranked by summed log-probability
        scores = [r["score"] for r in rows[first:first + 3]]
        assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)
    best = _rows(cli("predict", "s2s", "--beam-size", "3", input=SOURCES))
    assert [r["output"] for r in best] == [rows[0]["output"], rows[3]["output"]]
    greedy = _rows(cli("predict", "s2s", input=SOURCES))
    assert _rows(cli("predict", "s2s", "--beam-size", "1", input=SOURCES)) == greedy

    too_many = cli("predict", "s2s", "--beam-size", "2", "--n-best", "3", input=SOURCES)
    assert too_many.exit_code == 2
    assert "--n-best: expected at most the beam width (--beam-size 2), got 3" in too_many.stderr

    # CliRunner's stderr is not a terminal: no progress bar among the metrics.
    evaluated = cli("evaluate", "s2s", "--data", paths["valid"])
    assert evaluated.exit_code == 0, evaluated.output
    assert evaluated.stderr == "" and "bleu" in evaluated.stdout
