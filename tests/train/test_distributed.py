"""Data-parallel training: row shards, and 2 gloo processes on 127.0.0.1 vs 1 process.

Tolerance: the 2-process gradients are the 1-process ones summed in a different float32 order
(per-rank partial sums, then an all-reduce), so losses agree to rounding that Adam amplifies a
little step by step; after 12 steps they stay within 1e-4 relative (measured ~1e-6).
"""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.train.train_toys import Recorder, RegressionSource, Regressor, quiet_config

from rnnkit.data import LanguageModelStream
from rnnkit.data.batch import TokenBatch
from rnnkit.models import LanguageModel, LanguageModelConfig, TruncatedBPTTLoss
from rnnkit.train import Trainer, load_checkpoint, seed_everything
from rnnkit.train.distributed import (
    RankBatch,
    ShardedSource,
    batch_rows,
    launch_local,
    rank_rows,
    shard_batch,
)

LOSS_TOLERANCE = 1e-5  # relative, after 12 steps (see the module docstring)
STEPS = 12


# ---------------------------------------------------------------------------------- shards
@settings(max_examples=60, derandomize=True, deadline=None)
@given(rows=st.integers(1, 40), world=st.integers(1, 6))
def test_shards_partition_the_rows_evenly(rows, world):
    batch = TokenBatch(torch.arange(rows * 3).view(rows, 3), torch.full((rows,), 3),
                       torch.arange(rows))
    shards = [shard_batch(batch, r, world) for r in range(world)]
    assert sum(s.rows for s in shards) == rows
    kept = [s for s in shards if s.rows]
    assert max(s.rows for s in kept) - min(s.rows for s in shards) <= 1
    assert torch.equal(torch.cat([s.batch.tokens for s in kept]), batch.tokens)
    assert torch.equal(torch.cat([s.batch.targets for s in kept]), batch.targets)
    for shard in shards:  # a rank without rows of its own still gets one row (weight 0)
        assert len(shard.batch) == max(shard.rows, 1) and shard.total_rows == rows


def test_take_rows_keeps_tensors_that_are_not_per_row():
    table = torch.ones(5, 2)
    shard = shard_batch({"x": torch.arange(8.0).view(4, 2), "table": table, "name": "a"}, 1, 2)
    assert shard.batch["x"].tolist() == [[4.0, 5.0], [6.0, 7.0]]
    assert shard.batch["table"] is table and shard.batch["name"] == "a"
    assert batch_rows((torch.zeros(3, 2), torch.zeros(3))) == 3
    assert rank_rows(7, 0, 2) == (0, 3) and rank_rows(7, 1, 2) == (3, 7)


def test_sharded_source_resumes_at_a_batch_and_checks_arguments():
    source = RegressionSource(batches=4, batch_size=6)
    sharded = ShardedSource(source, 1, 3)
    assert len(sharded) == 4
    full = list(sharded.iter_epoch(2))
    later = list(sharded.iter_epoch(2, start=2))
    assert all(isinstance(b, RankBatch) and b.rows == 2 for b in full)
    assert torch.equal(later[0].batch.x, full[2].batch.x)
    with pytest.raises(ValueError, match="rank: expected 0 <= rank < world=2, got 2"):
        ShardedSource(source, 2, 2)
    with pytest.raises(TypeError, match="source: expected a batch source"):
        ShardedSource([1, 2], 0, 2)
    with pytest.raises(TypeError, match="batch: expected a tensor"):
        shard_batch(object(), 0, 2)


def test_launch_refuses_a_bad_process_count():
    with pytest.raises(ValueError, match="--nproc: expected an integer >= 1, got 0"):
        launch_local(0, ["train"])


# ------------------------------------------------------------------ 2 processes vs 1 process
_NOISE = torch.Generator().manual_seed(3)
TEXT = torch.where(torch.rand(2_000, generator=_NOISE) < 0.1,  # a cycle with 10% noise
                   torch.randint(0, 11, (2_000,), generator=_NOISE), torch.arange(2_000) * 3 % 11)


def _language_model() -> LanguageModel:
    seed_everything(0)
    config = LanguageModelConfig(vocab_size=11, embedding_size=8, hidden_size=16, cell="lstm")
    return LanguageModel(config)


def _lm_trainer(run_dir: Path | None, max_steps: int = STEPS, recorder=None) -> Trainer:
    # 6 parallel streams of the text, 10 tokens per chunk: rank r of 2 reads streams 3r..3r+2
    source = LanguageModelStream(TEXT, batch_size=6, seq_len=10, seed=0, random_offset=True)
    return Trainer(_language_model(), source, quiet_config(lr=1e-2, max_steps=max_steps),
                   loss_fn=TruncatedBPTTLoss(), run_dir=run_dir,
                   callbacks=[recorder] if recorder else [], metadata={"kind": "lm"})


def _regression_trainer(recorder) -> Trainer:
    seed_everything(0)  # batches of 7 rows: ranks get 3 and 4, weighted 6/7 and 8/7
    return Trainer(Regressor(dropout=0.0), RegressionSource(batches=4, batch_size=7),
                   quiet_config(lr=1e-2, max_steps=STEPS), callbacks=[recorder])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        torch.set_num_threads(1)
        results = {}
        lm, regression = Recorder(), Recorder()
        _lm_trainer(Path(out) / "lm", recorder=lm).fit()
        results["lm"] = lm.losses
        _regression_trainer(regression).fit()
        results["regression"] = regression.losses
        # resume the distributed run's checkpoint in the same 2 processes for 4 more steps
        resumed = Recorder()
        _lm_trainer(Path(out) / "lm", max_steps=STEPS + 4, recorder=resumed).fit(resume=True)
        results["resumed"] = resumed.losses
        Path(out, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_rank_main, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return out, [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_two_processes_train_the_same_language_model_as_one(two_process_run, tmp_path):
    _, ranks = two_process_run
    torch.set_num_threads(1)
    single = Recorder()
    _lm_trainer(tmp_path / "single", recorder=single).fit()
    assert len(ranks[0]["lm"]) == STEPS
    assert ranks[0]["lm"] == pytest.approx(single.losses, rel=LOSS_TOLERANCE)
    assert ranks[1]["lm"] == ranks[0]["lm"]  # every rank logs the global batch loss
    assert single.losses[-1] < single.losses[0] - 0.05  # and it is actually learning


def test_indivisible_batches_are_weighted_by_rows(two_process_run):
    _, ranks = two_process_run
    single = Recorder()
    _regression_trainer(single).fit()
    assert ranks[0]["regression"] == pytest.approx(single.losses, rel=LOSS_TOLERANCE)


def test_distributed_checkpoint_loads_and_resumes_in_one_process(two_process_run, tmp_path):
    out, ranks = two_process_run
    last = out / "lm" / "checkpoints" / "last"
    checkpoint = load_checkpoint(last, _language_model())
    assert not any(name.startswith("module.") for name in checkpoint.model_state)
    assert checkpoint.metadata["kind"] == "lm"
    assert checkpoint.metadata["trainer"]["step"] == STEPS + 4
    with open(out / "lm" / "metrics.csv", newline="") as handle:  # rank 0 alone logs
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, STEPS + 5))
    # the 2-process run resumed in 2 processes; the same checkpoint resumes in 1 process too
    import shutil

    shutil.copytree(out / "lm", tmp_path / "lm")
    recorder = Recorder()
    result = _lm_trainer(tmp_path / "lm", max_steps=STEPS + 8, recorder=recorder).fit(resume=True)
    assert result.global_step == STEPS + 8 and len(recorder.losses) == 4
    assert len(ranks[0]["resumed"]) == 4
    # the resumed runs continue the loss curve (the carried hidden state restarts from zeros)
    assert max(recorder.losses) < ranks[0]["lm"][0]


def test_backend_is_nccl_on_cuda_and_gloo_on_cpu():
    from rnnkit.train.distributed import backend_for

    assert backend_for(torch.device("cuda:0")) == "nccl"
    assert backend_for(torch.device("cpu")) == "gloo"
