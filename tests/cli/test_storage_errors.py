"""A full disk or a read-only directory at any write of a run (checkpoint, metrics.csv,
summary.json, config.yaml, the lock): one line naming the path, exit 2, the previous
checkpoint intact and loadable, no temporary file left, and the run resumable."""

from __future__ import annotations

import builtins
import errno
import json
import os
from pathlib import Path

import pytest
import torch
from tests.cli.test_errors import assert_user_error, hello_config
from tests.faults import OPERATIONS, inject_write_faults
from tests.train.train_toys import RegressionSource, Regressor, quiet_config

from rnnkit.models import load_model
from rnnkit.train import Trainer, load_checkpoint, save_checkpoint
from rnnkit.train.durable import WriteError, replace_file

TINY = ("--no-progress", "--set", "train.eval_every=1")


def _leftovers(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if ".tmp" in p.name)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch, operation,
                                                          code):
    target = tmp_path / "checkpoints" / "last"
    save_checkpoint(target, Regressor(), {"version": 1}, trainer_state={"a": torch.ones(2)},
                    keep_previous=True)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    faults = inject_write_faults(monkeypatch, f"{tmp_path}/checkpoints/*", code, (operation,))
    with pytest.raises(WriteError) as caught:
        save_checkpoint(target, Regressor(), {"version": 2}, keep_previous=True)
    faults.armed = False
    reason = {errno.ENOSPC: "no space left on the device (ENOSPC)",
              errno.EACCES: "permission denied (EACCES)"}[code]
    assert str(caught.value) == f"cannot write checkpoint {target}: {reason}"
    assert caught.value.errno == code and faults.hits >= 1
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert load_checkpoint(target).metadata == {"version": 1}
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_failed_file_replacement_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch,
                                                                       operation):
    path = replace_file(tmp_path / "summary.json", '{"old": 1}\n', "run summary")
    inject_write_faults(monkeypatch, f"{tmp_path}/*", errno.ENOSPC, (operation,))
    with pytest.raises(WriteError, match=rf"cannot write run summary {path}: no space left"):
        replace_file(path, '{"new": 2}\n', "run summary")
    assert path.read_text() == '{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_disk_full_before_the_first_last_resumes_from_best(cli, tmp_path, monkeypatch):
    config = hello_config(tmp_path)
    steps = ("--set", "train.max_steps=4")
    assert cli("train", config, "--out", "straight", *steps, *TINY).exit_code == 0
    faults = inject_write_faults(monkeypatch, f"{tmp_path}/full/checkpoints/.last.tmp-*")
    result = cli("train", config, "--out", "full", *steps, *TINY)
    assert_user_error(result, "error: cannot write checkpoint full/checkpoints/last: no space "
                              "left on the device (ENOSPC)")
    faults.armed = False
    assert sorted(p.name for p in Path("full/checkpoints").iterdir()) == ["best"]
    result = cli("train", "--out", "full", "--resume", *TINY)
    assert result.exit_code == 0, result.output
    resumed, straight = load_model("full/checkpoints/last"), load_model("straight/checkpoints/last")
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert _leftovers(tmp_path / "full") == []


@pytest.mark.parametrize(("file", "what"), [("metrics.csv", "metrics log"),
                                            ("summary.json", "run summary")])
def test_a_full_disk_at_a_log_write_is_one_line_naming_it(cli, tmp_path, monkeypatch, file,
                                                          what):
    config = hello_config(tmp_path)
    assert cli("train", config, "--out", "r", "--set", "train.max_steps=2", *TINY).exit_code == 0
    last = {p.name: p.read_bytes() for p in Path("r/checkpoints/last").iterdir()}
    inject_write_faults(monkeypatch, f"{tmp_path}/r/*{file}*", operations=("open", "write"))
    result = cli("train", "--out", "r", "--resume", "--set", "train.max_steps=3", *TINY)
    assert_user_error(result, f"error: cannot write {what} r/{file}: no space left on the "
                              "device (ENOSPC)")
    if file == "metrics.csv":  # failed before step 3's checkpoint: `last` is untouched
        assert {p.name: p.read_bytes() for p in Path("r/checkpoints/last").iterdir()} == last
    assert load_checkpoint("r/checkpoints/last").trainer_state is not None
    assert _leftovers(tmp_path / "r") == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_full_disk_at_a_tensorboard_write_is_one_line_naming_the_event_file(
        cli, tmp_path, monkeypatch, code):
    config = hello_config(tmp_path)
    assert cli("train", config, "--out", "r", "--set", "train.max_steps=2", *TINY).exit_code == 0
    last = {p.name: p.read_bytes() for p in Path("r/checkpoints/last").iterdir()}
    faults = inject_write_faults(monkeypatch, f"{tmp_path}/r/tensorboard/*", code, ("write",))
    result = cli("train", "--out", "r", "--resume", "--set", "train.max_steps=3",
                 "--set", "train.tensorboard=true", *TINY)
    reason = {errno.ENOSPC: "no space left on the device (ENOSPC)",
              errno.EACCES: "permission denied (EACCES)"}[code]
    assert_user_error(result, "error: cannot write TensorBoard log r/tensorboard/events.out."
                              "tfevents.", reason)
    assert faults.hits == 1  # the first event: nothing after it was tried, nothing printed
    assert {p.name: p.read_bytes() for p in Path("r/checkpoints/last").iterdir()} == last
    assert load_checkpoint("r/checkpoints/last").trainer_state is not None
    assert _leftovers(tmp_path / "r") == []
    faults.armed = False  # space freed: the same resume runs and logs
    result = cli("train", "--out", "r", "--resume", "--set", "train.max_steps=3",
                 "--set", "train.tensorboard=true", *TINY)
    assert result.exit_code == 0, result.output


def test_a_tensorboard_file_that_cannot_be_created_is_a_write_error(tmp_path, monkeypatch):
    real_open = builtins.open

    def refusing_open(file, mode="r", *args, **kwargs):
        if "tfevents" in str(file) and "x" in mode:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    expected = (r"cannot write TensorBoard log .*/tensorboard/events\.out\.tfevents\.\S+: "
                r"the file system is read-only \(EROFS\)")
    with pytest.raises(WriteError, match=expected):
        Trainer(Regressor(), RegressionSource(), quiet_config(max_steps=2, tensorboard=True),
                run_dir=tmp_path).fit()
    assert [p.name for p in (tmp_path / "tensorboard").iterdir()] == []


def test_a_read_only_output_directory_is_one_line_exit_2(cli, tmp_path, monkeypatch):
    inject_write_faults(monkeypatch, f"{tmp_path}/ro/*", errno.EROFS)
    result = cli("train", hello_config(tmp_path), "--out", "ro", "--set", "train.max_steps=1",
                 *TINY)
    assert_user_error(result, "error: ro/", "the file system is read-only (EROFS)")


def test_evaluate_json_prints_valid_json_when_a_metric_is_nan(cli, tmp_path, monkeypatch):
    config = hello_config(tmp_path)
    assert cli("train", config, "--out", "r", "--set", "train.max_steps=1", *TINY).exit_code == 0
    from rnnkit.tasks.run import Run

    monkeypatch.setattr(Run, "evaluate", lambda self, path, progress=False: {
        "loss": float("nan"), "perplexity": float("inf"), "bpc": 1.5})
    sample = tmp_path / "valid.txt"
    sample.write_text("hello hello\n")
    result = cli("evaluate", "r", "--data", sample, "--json")
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    assert json.loads(result.stdout, parse_constant=refuse) == {
        "loss": None, "perplexity": None, "bpc": 1.5}


def test_a_huge_hidden_size_fails_in_the_config_check(cli, tmp_path):
    result = cli("train", hello_config(tmp_path), "--out", "r", "--set",
                 "model.hidden_size=1000000000", *TINY)
    assert_user_error(result, "error: model.hidden_size=1000000000 (cell lstm, num_layers 2): "
                              "training needs at least 111 EB for the recurrent weights alone "
                              "(8e+18 parameters in float32", "more than the ",
                      "of memory available; choose a smaller model.hidden_size")
    assert not Path("r").exists()


def test_the_memory_check_is_a_lower_bound_that_passes_real_models():
    from rnnkit.tasks.config import ModelConfig
    from rnnkit.tasks.memory_check import check_model_fits_memory, recurrent_parameters

    model = ModelConfig(cell="gru", hidden_size=512, num_layers=2, bidirectional=True)
    assert recurrent_parameters(model) == 3 * 512 * 514 * 2 * 2
    check_model_fits_memory(model, available=10**8)  # 48 MB of training state
    with pytest.raises(ValueError, match=r"needs at least 48.2 MB .* more than the 9.54 MB"):
        check_model_fits_memory(model, available=10**7)
