"""Training a config again without --out is refused in runs/<name> (no silent runs/<name>-2),
in the CLI's flags; the Python API says the same in its own argument names."""

from __future__ import annotations

import pytest
from tests.cli.test_errors import assert_user_error, hello_config

from rnnkit.tasks import load_config, train
from rnnkit.tasks.errors import RunDirError

TINY = ("--no-progress", "--set", "train.max_steps=2", "--set", "train.eval_every=1")


def test_a_second_train_without_out_is_refused_naming_the_flags(cli, tmp_path):
    config = hello_config(tmp_path)
    first = cli("train", config, *TINY)
    assert first.exit_code == 0, first.output
    assert "→ runs/hello" in first.stderr
    second = cli("train", config, *TINY)
    assert_user_error(second, "runs/hello already exists and holds a trained run (made ",
                      "pass --resume to continue that run, --overwrite to replace it, or "
                      "choose another --out DIR for a new one")
    assert not (tmp_path / "runs" / "hello-2").exists()
    again = cli("train", config, "--overwrite", *TINY)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["hello"]


def test_the_python_api_speaks_in_its_own_argument_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(hello_config(tmp_path), ["train.max_steps=1", "train.progress=false"])
    train(config, tmp_path / "run")
    with pytest.raises(RunDirError) as refused:
        train(config, tmp_path / "run")
    assert "pass resume=True to continue that run, overwrite=True to replace it" in \
        str(refused.value)
    assert "--" not in str(refused.value)
    with pytest.raises(RunDirError, match="resume=True and overwrite=True exclude each other"):
        train(config, tmp_path / "run", resume=True, overwrite=True)
