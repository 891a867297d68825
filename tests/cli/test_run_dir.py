"""`rnnkit train` into an existing directory: --overwrite replaces only an rnnkit run (and only
rnnkit's files in it), a run without a checkpoint restarts, a locked run is refused."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

from tests.cli.conftest import write
from tests.cli.test_errors import assert_user_error, hello_config
from tests.tasks.test_run_lock import Holder

from rnnkit.tasks.run_dir import MARKER_FILE
from rnnkit.tasks.run_lock import LOCK_FILE

TINY = ("--no-progress", "--set", "train.eval_every=1")


def steps(run: str) -> int:
    return json.loads(Path(run, "summary.json").read_text())["steps"]


def test_overwrite_refuses_a_project_folder_and_the_thesis_survives(cli, tmp_path):
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    write(project / "config.yaml", "my: own config\n")
    write(project / "src" / "thesis.tex", "\\chapter{Results}\n")
    result = cli("train", hello_config(tmp_path), "--out", "proj", "--overwrite", *TINY)
    assert_user_error(result, "proj already exists and is not an rnnkit run",
                      f"no {MARKER_FILE} marker", "src", "refusing to overwrite it")
    assert (project / "src" / "thesis.tex").read_text() == "\\chapter{Results}\n"
    assert (project / "config.yaml").read_text() == "my: own config\n"
    assert sorted(p.name for p in project.iterdir()) == ["config.yaml", "src"]  # no lock left


def test_overwrite_replaces_a_run_and_keeps_files_rnnkit_did_not_write(cli, tmp_path):
    config = hello_config(tmp_path)
    assert cli("train", config, "--out", "r", "--set", "train.max_steps=3", *TINY).exit_code == 0
    marker = json.loads(Path("r", MARKER_FILE).read_text())
    write(tmp_path / "r" / "notes.txt", "keep me")
    write(tmp_path / "r" / "checkpoints" / "mine.txt", "mine")
    result = cli("train", config, "--out", "r", "--overwrite", "--set", "train.max_steps=2", *TINY)
    assert result.exit_code == 0, result.output
    assert ("rnnkit: kept r and what rnnkit did not write there: checkpoints/mine.txt, "
            "notes.txt") in result.stderr
    assert Path("r/notes.txt").read_text() == "keep me"
    assert Path("r/checkpoints/mine.txt").read_text() == "mine"
    assert steps("r") == 2
    assert len(Path("r/metrics.csv").read_text().splitlines()) == 1 + 2  # the old rows are gone
    assert json.loads(Path("r", MARKER_FILE).read_text())["rnnkit_version"] == marker[
        "rnnkit_version"]
    assert not Path("r", LOCK_FILE).exists()


def test_a_run_stopped_before_its_first_checkpoint_restarts_without_overwrite(cli, tmp_path):
    config = hello_config(tmp_path)
    assert cli("train", config, "--out", "r", "--set", "train.max_steps=2", *TINY).exit_code == 0
    # As if killed before its first checkpoint: no best, no last, no earlier copy of last.
    shutil.rmtree(Path("r/checkpoints"))
    Path("r/summary.json").unlink()
    assert_user_error(cli("train", "--out", "r", "--resume", *TINY), "nothing to resume",
                      "without --resume")
    result = cli("train", config, "--out", "r", "--set", "train.max_steps=2", *TINY)
    assert result.exit_code == 0, result.output
    assert steps("r") == 2 and Path("r/checkpoints/last").is_dir()


def test_a_second_train_into_a_locked_run_is_refused_whatever_the_flags(cli, tmp_path):
    config = hello_config(tmp_path)
    assert cli("train", config, "--out", "r", "--set", "train.max_steps=1", *TINY).exit_code == 0
    holder = Holder(tmp_path / "r")  # another process training into r
    try:
        for flags in ((), ("--resume",), ("--overwrite",)):
            result = cli("train", config, "--out", "r", *flags, *TINY)
            assert_user_error(result, f"r is in use: process {holder.pid} on host "
                              f"{socket.gethostname()}", "wait for it to finish")
        assert steps("r") == 1  # untouched
    finally:
        holder.finish()
    assert not Path("r", LOCK_FILE).exists()
