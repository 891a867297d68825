"""Every user error is one line on stderr, exit code 2, no traceback; --debug shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.conftest import write

TINY_TRAIN = ["--set", "train.max_steps=1", "--set", "train.eval_every=1"]


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr  # one line, and it is the last thing printed
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def hello_config(tmp_path: Path, extra: str = "") -> Path:
    return write(tmp_path / "hello.yaml",
                 "task: language_model\ndata: {dataset: hello, seq_len: 8}\n"
                 "model: {hidden_size: 8, embedding_size: 4}\ntrain: {batch_size: 4}\n" + extra)


def test_missing_config_file(cli):
    assert_user_error(cli("train", "nowhere.yaml"), "config file not found", "nowhere.yaml")


def test_missing_data_file(cli, tmp_path):
    config = write(tmp_path / "c.yaml", "task: classification\ndata: {train: absent.csv}\n")
    assert_user_error(cli("train", config), "data.train", "absent.csv")


def test_unknown_key_suggests_the_closest(cli, tmp_path):
    config = write(tmp_path / "c.yaml", "task: language_model\ndata: {datset: hello}\n")
    assert_user_error(cli("train", config), "data.datset", "did you mean 'dataset'?")


def test_unknown_section_and_task_suggest(cli, tmp_path):
    config = write(tmp_path / "c.yaml", "task: clasification\n")
    assert_user_error(cli("train", config), "did you mean 'classification'?")
    config = write(tmp_path / "d.yaml", "trian: {lr: 0.1}\n")
    assert_user_error(cli("train", config), "did you mean 'train'?")


def test_set_unknown_key_suggests(cli, tmp_path):
    result = cli("train", hello_config(tmp_path), "--set", "train.lrr=0.1")
    assert_user_error(result, "train.lrr", "did you mean 'lr'?")


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("train.lr=fast", ("train.lr", "expected a number", "'fast'")),
        ("model.hidden_size=1.5", ("model.hidden_size", "expected an integer", "1.5")),
        ("train.max_steps=ten", ("train.max_steps", "'ten'")),
        ("data.lowercase=maybe", ("data.lowercase", "true or false")),
        ("model.cell=lstn", ("model.cell", "did you mean 'lstm'?")),
        ("nosection", ("expected section.key=value",)),
    ],
)
def test_set_wrong_type(cli, tmp_path, override, fragments):
    assert_user_error(cli("train", hello_config(tmp_path), "--set", override), *fragments)


def test_bad_value_names_the_field(cli, tmp_path):
    result = cli("train", hello_config(tmp_path), "--set", "train.lr=-1")
    assert_user_error(result, "train.lr", "> 0")


def test_option_of_another_task_is_refused(cli, tmp_path):
    config = hello_config(tmp_path, "")
    assert_user_error(cli("train", config, "--set", "model.attention=luong_dot"),
                      "model.attention does not apply to task language_model")


def test_malformed_data_line_names_file_and_line(cli, tmp_path):
    data = write(tmp_path / "reviews.csv", "text,label\ngood film,pos\nbad film\nok,neg\n")
    config = write(tmp_path / "c.yaml", f"task: classification\ndata: {{train: {data}}}\n")
    assert_user_error(cli("train", config), f"{data}:3", "expected 2 fields")
    assert not (tmp_path / "runs").exists()  # nothing written for a run that never started


def test_malformed_tagged_line(cli, tmp_path):
    data = write(tmp_path / "pos.txt", "the/DET cat/NOUN\nthe dog/NOUN\n")
    config = write(tmp_path / "c.yaml", f"task: tagging\ndata: {{train: {data}}}\n")
    assert_user_error(cli("train", config), f"{data}:2", "'the' is not word/TAG")


def test_dir_that_is_not_a_run(cli, tmp_path):
    (tmp_path / "plain").mkdir()
    data = write(tmp_path / "x.txt", "hello\n")
    for command in (["evaluate", "plain", "--data", data], ["generate", "plain"],
                    ["predict", "plain"], ["export", "plain", "--format", "onnx"]):
        assert_user_error(cli(*command), "plain is not an rnnkit run")
    assert_user_error(cli("generate", "missing"), "no such run directory")


def test_incompatible_options(cli, tmp_path):
    result = cli("train", hello_config(tmp_path), "--out", "r", "--resume", "--overwrite")
    assert_user_error(result, "--resume and --overwrite")


def test_existing_run_dir_is_refused_and_nothing_to_resume(cli, tmp_path):
    config = hello_config(tmp_path)
    assert_user_error(cli("train", config, "--out", "fresh", "--resume"), "nothing to resume")
    (tmp_path / "taken").mkdir()
    write(tmp_path / "taken" / "notes.txt", "mine")
    assert_user_error(cli("train", config, "--out", "taken"), "already exists",
                      "not an rnnkit run", "notes.txt", "choose another --out")
    assert_user_error(cli("train", config, "--out", "taken", "--overwrite"), "not an rnnkit run")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_invalid_yaml_names_the_line(cli, tmp_path):
    config = write(tmp_path / "c.yaml", "task: language_model\ndata: [unclosed\n")
    assert_user_error(cli("train", config), "c.yaml", "not valid YAML")


def test_debug_shows_the_traceback(cli, tmp_path):
    from rnnkit.tasks import ConfigError

    config = write(tmp_path / "c.yaml", "task: language_model\ndata: {datset: hello}\n")
    result = cli("--debug", "train", config)
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)


def test_unknown_dataset(cli):
    assert_user_error(cli("datasets", "prepare", "imdb"), "unknown dataset 'imdb'")


@pytest.mark.parametrize("bug", [TypeError("unsupported operand"), KeyError("artifacts")])
def test_a_type_or_key_error_is_a_failure_not_a_user_error(cli, tmp_path, monkeypatch, bug):
    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr("rnnkit.cli.inference.load_run", broken)
    result = cli("generate", tmp_path)
    assert result.exit_code == 1, result.output
    assert f"error: {type(bug).__name__}: " in result.stderr
    assert "rnnkit --debug" in result.stderr  # where to see the traceback of the bug


def test_config_type_errors_are_user_errors_and_still_type_errors(cli, tmp_path):
    from rnnkit.errors import RnnkitError
    from rnnkit.tasks import load_config

    result = cli("train", hello_config(tmp_path), "--set", "train.seed=1.5")
    assert_user_error(result, "train.seed: expected an integer, got 1.5")
    with pytest.raises(TypeError) as caught:  # what Python callers have always caught
        load_config(hello_config(tmp_path), ["train.seed=1.5"])
    assert isinstance(caught.value, RnnkitError)
