"""``rnnkit train --nproc/--device/--amp``: data-parallel runs through torchrun's launcher.

Two tune workers sharing one study are tested in ``test_train_tune.py``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch
from tests.cli.conftest import write

from rnnkit.tasks import load_run
from rnnkit.tasks.data_files import resolve_paths

ROOT = Path(__file__).resolve().parents[2]
# No dropout: one process and two draw different masks, everything else is the same.
HELLO = ("task: language_model\ndata: {dataset: hello, seq_len: 8}\n"
         "model: {hidden_size: 8, embedding_size: 4, dropout: 0.0}\n"
         "train: {batch_size: 4, eval_every: 3}\n")
LOSS_TOLERANCE = 1e-5  # relative; float32 sums in another order (measured: below 1e-6)


def metrics(run: str) -> list[dict[str, str]]:
    with open(Path(run) / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def steps_of(run: str) -> int:
    return json.loads((Path(run) / "summary.json").read_text())["steps"]


@pytest.fixture
def launched(cli, monkeypatch):
    """The cli fixture, with ``python -m rnnkit`` importable in launched processes."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    return cli


def test_two_processes_match_one_and_resume_across_process_counts(launched, tmp_path,
                                                                  monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    config = write(tmp_path / "hello.yaml", HELLO)
    common = ("--set", "train.max_steps=6", "--no-progress")
    # first, with an empty cache: rank 0 writes the generated sample before rank 1 reads it
    result = launched("train", config, "--out", "ddp", "--nproc", "2", *common)
    assert result.exit_code == 0, result.output
    assert "OMP_NUM_THREADS" not in os.environ  # set for the ranks only, not left behind
    assert launched("train", config, "--out", "single", *common).exit_code == 0
    single, ddp = metrics("single"), metrics("ddp")
    assert [float(r["loss"]) for r in ddp] == pytest.approx(
        [float(r["loss"]) for r in single], rel=LOSS_TOLERANCE)
    assert float(ddp[-1]["valid_loss"]) == pytest.approx(float(single[-1]["valid_loss"]),
                                                         rel=LOSS_TOLERANCE)
    # 2 processes -> 1 process -> 2 processes, one metrics row per step, written by rank 0
    resumed = launched("train", "--out", "ddp", "--resume", "--set", "train.max_steps=9",
                       "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    again = launched("train", "--out", "ddp", "--resume", "--nproc", "2", "--set",
                     "train.max_steps=12", "--no-progress")
    assert again.exit_code == 0, again.output
    assert steps_of("ddp") == 12
    assert [int(r["step"]) for r in metrics("ddp")] == list(range(1, 13))
    run = load_run("ddp")  # a single process loads the data-parallel run's checkpoint
    assert next(run.model.parameters()).device.type == "cpu"
    scores = run.evaluate(resolve_paths(run.config.data)["train"])
    assert scores["loss"] < float(metrics("ddp")[0]["loss"])  # learned since step 1


def test_a_failing_rank_gives_the_user_error_exit_code(launched, tmp_path):
    config = write(tmp_path / "hello.yaml", HELLO)
    assert launched("train", config, "--out", "r", "--set", "train.max_steps=1",
                    "--no-progress").exit_code == 0
    result = launched("train", config, "--out", "r", "--nproc", "2", "--no-progress")
    assert result.exit_code == 2  # each rank refuses the existing run directory


def test_amp_and_device_options_are_checked_before_training(cli, tmp_path):
    config = write(tmp_path / "hello.yaml", HELLO)
    bogus = cli("train", config, "--out", "a", "--amp", "fp8")
    assert bogus.exit_code == 2 and "amp" in bogus.stderr
    if not torch.cuda.is_available():
        amp = cli("train", config, "--out", "b", "--amp", "fp16")
        assert amp.exit_code == 2 and "needs a CUDA device" in amp.stderr
        cuda = cli("train", config, "--out", "c", "--device", "cuda")
        assert cuda.exit_code == 2 and "CUDA is not available" in cuda.stderr
    assert not any(Path(name).exists() for name in ("a", "b", "c"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_mixed_precision_run_loads_on_cpu(cli, tmp_path, amp):
    config = write(tmp_path / "hello.yaml", HELLO)
    result = cli("train", config, "--out", "gpu", "--device", "cuda", "--amp", amp,
                 "--set", "train.max_steps=6", "--no-progress")
    assert result.exit_code == 0, result.output
    assert all(float(row["loss"]) < 10 for row in metrics("gpu"))
    run = load_run("gpu")  # CPU by default, whatever trained it
    assert next(run.model.parameters()).device.type == "cpu"
    assert run.generate(length=5, seed=0)
