"""Finding a bundled dataset's files: `datasets path`, `--data dataset:NAME:SPLIT`, a truthful
`datasets list`, and a forecasting `predict` error that says what to pass."""

from __future__ import annotations

import json

from tests.cli.conftest import write
from tests.cli.test_errors import assert_user_error

from rnnkit.data.datasets import load_sample


def test_datasets_path_prints_each_split_or_one(cli):
    sample = load_sample("dates")
    result = cli("datasets", "path", "dates")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{s}\t{p}" for s, p in sample.paths.items()]
    one = cli("datasets", "path", "dates", "test")
    assert one.stdout.strip() == str(sample.paths["test"])
    assert_user_error(cli("datasets", "path", "shakespeare", "test"),
                      "dataset 'shakespeare' has no 'test' split in its bundled sample; "
                      "expected one of train, valid, got 'test'")


def test_datasets_list_shows_the_splits_a_sample_really_has(cli):
    listing = cli("datasets", "list").stdout
    shakespeare = listing.split("\nrotten_tomatoes")[0]
    assert "(splits: train, valid; no test in the sample)" in shakespeare
    assert "validation and test" not in shakespeare
    assert "(splits: train, valid, test)" in listing.split("\ndates")[1].split("\n")[1]
    assert "--data dataset:NAME:SPLIT" in listing


def test_evaluate_takes_a_bundled_split_by_name(cli, tmp_path):
    write(tmp_path / "hello.yaml", "task: language_model\ndata: {dataset: hello, seq_len: 8}\n"
          "model: {hidden_size: 8, embedding_size: 4}\ntrain: {batch_size: 4, max_steps: 1}\n")
    assert cli("train", "hello.yaml", "--out", "r", "--no-progress").exit_code == 0
    by_name = cli("evaluate", "r", "--data", "dataset:hello:valid", "--json")
    assert by_name.exit_code == 0, by_name.output
    by_path = cli("evaluate", "r", "--data", load_sample("hello").paths["valid"], "--json")
    assert json.loads(by_name.stdout) == json.loads(by_path.stdout)
    assert_user_error(cli("evaluate", "r", "--data", "dataset:nope"), "unknown dataset 'nope'")


def test_forecast_predict_on_a_short_tail_says_what_to_pass(cli, tmp_path):
    write(tmp_path / "air.yaml", "task: forecasting\ndata: {dataset: air_passengers}\n"
          "model: {hidden_size: 4}\ntrain: {max_steps: 1, batch_size: 8}\n")
    assert cli("train", "air.yaml", "--out", "r", "--no-progress").exit_code == 0
    result = cli("predict", "r", "--input", "dataset:air_passengers:test")
    assert_user_error(result, "expected at least lookback=24 rows to forecast from, got 12",
                      "pass the history up to the forecast origin", "not only a held-out tail")
