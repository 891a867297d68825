"""`predict` reads its input in the run's format: a CSV's text column (no header, no label),
CoNLL tokens, a series from stdin named <stdin>; a closed pipe ends quietly; a terminal is told
that stdin is awaited."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import write
from tests.cli.test_errors import assert_user_error

from rnnkit.cli import predict_inputs

REVIEWS = "text,label\n" + "".join(
    f'"{t}",{label}\n' for t, label in [("a gripping, great film", "fresh"),
                                        ("dull and long", "rotten")] * 6)


def train_classifier(cli, tmp_path: Path) -> None:
    write(tmp_path / "reviews.csv", REVIEWS)
    write(tmp_path / "c.yaml", "task: classification\ndata: {train: reviews.csv, "
          "valid: reviews.csv}\nmodel: {hidden_size: 4, embedding_size: 4}\n"
          "train: {max_steps: 1, batch_size: 4}\n")
    assert cli("train", "c.yaml", "--out", "r", "--no-progress").exit_code == 0


def test_a_csv_gives_its_text_column_from_a_file_and_from_stdin(cli, tmp_path):
    train_classifier(cli, tmp_path)
    from_file = cli("predict", "r", "--input", "reviews.csv")
    assert from_file.exit_code == 0, from_file.output
    texts = [json.loads(line)["text"] for line in from_file.stdout.splitlines()]
    assert texts == ["a gripping, great film", "dull and long"] * 6  # no header, no label
    from_stdin = cli("predict", "r", input=REVIEWS)
    assert from_stdin.stdout == from_file.stdout
    plain = cli("predict", "r", input="dull and long\n\n")
    assert [json.loads(x)["text"] for x in plain.stdout.splitlines()] == ["dull and long"]


def test_a_csv_without_the_text_column_is_named(cli, tmp_path):
    train_classifier(cli, tmp_path)
    write(tmp_path / "other.csv", "review,label\nfine,fresh\n")
    assert_user_error(cli("predict", "r", "--input", "other.csv"),
                      "--input: expected a header with the text column 'text' "
                      "(data.text_column), got ['review', 'label']")


def test_conll_sentences_are_their_tokens():
    lines = ["-DOCSTART-\tO", "", "# sent 1", "Taylor\tB-person", "Swift\tI-person", "",
             "hi\tO"]
    assert predict_inputs._conll_sentences(lines, conllu=False) == ["Taylor Swift", "hi"]
    conllu = ["1\tThe\tthe\tDET", "2-3\tdon't\t_\t_", "2\tdo\tdo\tAUX", "3\tn't\tnot\tPART"]
    assert predict_inputs._conll_sentences(conllu, conllu=True) == ["The do n't"]


def test_a_forecast_from_stdin_names_stdin_not_a_temporary_file(cli, tmp_path):
    write(tmp_path / "air.yaml", "task: forecasting\ndata: {dataset: air_passengers}\n"
          "model: {hidden_size: 4}\ntrain: {max_steps: 1, batch_size: 8}\n")
    assert cli("train", "air.yaml", "--out", "r", "--no-progress").exit_code == 0
    result = cli("predict", "r", input="when,count\n1,2\n")
    assert_user_error(result, "<stdin>")
    assert "/tmp" not in result.stderr and "rnnkit-stdin" not in result.stderr


def test_a_terminal_is_told_that_stdin_is_read(capsys):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    predict_inputs.announce_stdin(Terminal())
    predict_inputs.announce_stdin(io.StringIO())
    assert capsys.readouterr().err == "reading from stdin (Ctrl-D to end)\n"


def test_a_closed_pipe_ends_quietly(cli, tmp_path):
    train_classifier(cli, tmp_path)
    many = "dull and long\n" * 20000  # more than a pipe buffer of output
    command = (f"{sys.executable} -m rnnkit predict {tmp_path / 'r'} | head -n 1")
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], input=many,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert json.loads(done.stdout)["text"] == "dull and long"
    assert done.stderr == ""
    assert done.returncode == 0
