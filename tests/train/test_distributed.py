"""Data-parallel training: row shards, and 2 gloo processes on 127.0.0.1 vs 1 process.

Tolerance: the 2-process gradients are the 1-process ones summed in a different float32 order
(per-rank partial sums, then an all-reduce), so losses agree to rounding that Adam amplifies a
little step by step; after 12 to 16 steps they stay within 1e-5 relative (measured: at most
2e-7, about one float32 step at a loss of 2). A run resumed in the same number of processes
repeats the uninterrupted one exactly. Losing the carried hidden state on resume (as before it
was checkpointed) moves the next loss by ~9e-3 relative, far outside the tolerance.
"""

from __future__ import annotations

import csv
import faulthandler
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from tests.train.train_toys import Recorder, RegressionSource, Regressor, quiet_config

from rnnkit.data import LanguageModelStream
from rnnkit.data.batch import TokenBatch
from rnnkit.models import LanguageModel, LanguageModelConfig, TruncatedBPTTLoss
from rnnkit.train import Trainer, load_checkpoint, seed_everything
from rnnkit.train.distributed import (
    RankBatch,
    ShardedSource,
    batch_rows,
    exit_process,
    held_rows,
    launch_local,
    rank_rows,
    shard_batch,
)
from rnnkit.train.row_state import gather_rows, rows_of_rank

ROOT = Path(__file__).resolve().parents[2]
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
    assert held_rows(7, 1, 2) == (3, 7) and held_rows(1, 0, 2) == (0, 1)  # a weight-0 copy


def test_rows_of_rank_cuts_a_gathered_state_and_refuses_another_batch_size():
    state = {"h": torch.arange(2 * 7 * 3.0).view(2, 7, 3), "c": torch.zeros(2, 7, 3)}
    ranks = [rows_of_rank(state, 1, 7, r, 2) for r in range(2)]
    assert torch.equal(torch.cat([ranks[0]["h"], ranks[1]["h"]], dim=1), state["h"])
    assert ranks[0]["h"].shape == (2, 3, 3) and ranks[1]["c"].shape == (2, 4, 3)
    assert torch.equal(rows_of_rank(state, 1, 7, 0, 1)["h"], state["h"])  # one process: all
    assert rows_of_rank(state, 1, 6, 0, 2) is None  # 7 stored rows are not 6 rows' streams
    one_row = {"h": torch.ones(1, 1, 3)}  # 1 row, 2 ranks: rank 0 holds a copy of row 0
    assert torch.equal(rows_of_rank(one_row, 1, 1, 0, 2)["h"], one_row["h"])


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


def test_a_signalled_launch_raises_the_signal_it_got(monkeypatch):
    """The launcher stopped by SIGTERM ends with a StopSignal naming it (exit 143 in the CLI),
    not as if it were Ctrl-C."""
    import signal

    import torch.distributed.launcher.api as launcher
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from rnnkit.train.interrupt import StopSignal

    def signalled_launch(config, entrypoint):
        def run(*args):
            raise SignalException("Process got signal: 15", sigval=signal.SIGTERM)

        return run

    monkeypatch.setattr(launcher, "elastic_launch", signalled_launch)
    with pytest.raises(StopSignal) as stopped:
        launch_local(2, ["train"])
    assert stopped.value.signal_number == signal.SIGTERM


def test_exit_process_runs_exit_handlers_and_flushes_before_it_exits(tmp_path):
    marker = tmp_path / "handler-ran"
    script = (
        "import atexit, pathlib, sys\n"
        "from rnnkit.train.distributed import exit_process\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "print('unflushed', end='')\n"
        "sys.stderr.write('to stderr')\n"
        "exit_process(3)\n"
        "print('never')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (3, "unflushed", "to stderr")
    assert marker.read_text() == "yes"


@pytest.mark.parametrize("args, code", [(["--version"], 0), (["train", "missing.yaml"], 2)])
def test_a_torchrun_rank_exits_with_the_commands_status(tmp_path, args, code):
    """In a rank (torchrun's variables set) the command ends through exit_process with the
    status and output it has outside one."""
    def run(extra: dict[str, str]) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **extra}
        return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=120)

    plain = run({})
    rank = run({"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"})
    assert plain.returncode == rank.returncode == code
    assert (rank.stdout, rank.stderr) == (plain.stdout, plain.stderr)
    assert rank.stdout or rank.stderr


# ------------------------------------------------------------------ 2 processes vs 1 process
_NOISE = torch.Generator().manual_seed(3)
TEXT = torch.where(torch.rand(2_000, generator=_NOISE) < 0.1,  # a cycle with 10% noise
                   torch.randint(0, 11, (2_000,), generator=_NOISE), torch.arange(2_000) * 3 % 11)


def _language_model() -> LanguageModel:
    seed_everything(0)
    config = LanguageModelConfig(vocab_size=11, embedding_size=8, hidden_size=16, cell="lstm")
    return LanguageModel(config)


class StateProbe(TruncatedBPTTLoss):
    """Truncated BPTT that keeps the carried state its first batch starts from (on a resume:
    the restored one)."""

    def __init__(self) -> None:
        super().__init__()
        self.first_state: dict[str, torch.Tensor] | None = None

    def __call__(self, model, batch):
        if self.first_state is None:
            self.first_state = self.state_dict()
        return super().__call__(model, batch)


def _lm_trainer(run_dir: Path | None, max_steps: int = STEPS, recorder=None, loss_fn=None,
                batch_size: int = 6) -> Trainer:
    # 6 parallel streams of the text, 10 tokens per chunk: rank r of 2 reads streams 3r..3r+2
    source = LanguageModelStream(TEXT, batch_size=batch_size, seq_len=10, seed=0,
                                 random_offset=True)
    return Trainer(_language_model(), source, quiet_config(lr=1e-2, max_steps=max_steps),
                   loss_fn=loss_fn or TruncatedBPTTLoss(), run_dir=run_dir,
                   callbacks=[recorder] if recorder else [], metadata={"kind": "lm"})


class CountingLoss:
    """A loss whose state is the same on every rank (a step count, like Seq2SeqLoss's
    teacher-forcing schedule)."""

    state_replicated = True

    def __init__(self) -> None:
        self.step = 0

    def __call__(self, model, batch):
        self.step += 1
        return model.loss(batch)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"step": torch.tensor(self.step)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.step = int(state["step"])


def _regression_trainer(recorder, run_dir: Path | None = None, max_steps: int = STEPS,
                        loss_fn=None) -> Trainer:
    seed_everything(0)  # batches of 7 rows: ranks get 3 and 4, weighted 6/7 and 8/7
    return Trainer(Regressor(dropout=0.0), RegressionSource(batches=4, batch_size=7),
                   quiet_config(lr=1e-2, max_steps=max_steps), callbacks=[recorder],
                   loss_fn=loss_fn, run_dir=run_dir)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gather_cases(rank: int) -> dict[str, list]:
    """gather_rows on uneven shares (3 and 4 rows) and with a weight-0 copy (0 and 1 rows)."""
    uneven = torch.full((2, 3 + rank, 2), float(rank))
    copy = torch.full((1, 1, 2), 5.0 + rank)
    gathered = gather_rows({"h": uneven}, 1, 3 + rank), gather_rows({"h": copy}, 1, rank)
    mixed = gather_rows({"h": uneven} if rank else {}, 1, 3 + rank)  # layouts differ: nothing
    if rank > 0:
        assert gathered == (None, None) and mixed is None
        return {}
    return {"uneven": gathered[0]["h"].tolist(), "copy": gathered[1]["h"].tolist(),
            "mixed": sorted(mixed)}


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    faulthandler.enable()  # a native abort in a rank prints every thread's Python stack
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        torch.set_num_threads(1)
        results = {}
        lm, full, regression = Recorder(), Recorder(), Recorder()
        trainer = _lm_trainer(Path(out) / "lm", recorder=lm)
        trainer.fit()
        results["lm"] = lm.losses
        save_file(trainer.loss_fn.state_dict(), str(Path(out, f"rank{rank}_state.safetensors")))
        if rank == 0:  # keep the step-12 checkpoint for the 2 -> 1 process resume
            shutil.copytree(Path(out) / "lm", Path(out) / "lm_at_12")
        dist.barrier()
        _lm_trainer(None, max_steps=STEPS + 4, recorder=full).fit()  # uninterrupted
        results["lm_full"] = full.losses
        _regression_trainer(regression, Path(out) / "counting", loss_fn=CountingLoss()).fit()
        results["regression"] = regression.losses
        counting = CountingLoss()  # resumed: the replicated step count carries on
        _regression_trainer(Recorder(), Path(out) / "counting", STEPS + 2, counting).fit(
            resume=True)
        results["counting_steps"] = counting.step
        # resume the distributed run's checkpoint in the same 2 processes for 4 more steps
        resumed = Recorder()
        _lm_trainer(Path(out) / "lm", max_steps=STEPS + 4, recorder=resumed).fit(resume=True)
        results["resumed"] = resumed.losses
        # resume a single-process checkpoint (made by the fixture) in 2 processes
        probe, from_single = StateProbe(), Recorder()
        _lm_trainer(Path(out) / "single_resumed", max_steps=STEPS + 4, recorder=from_single,
                    loss_fn=probe).fit(resume=True)
        results["from_single"] = from_single.losses
        save_file(probe.first_state, str(Path(out, f"rank{rank}_restored.safetensors")))
        results["gather"] = _gather_cases(rank)
        Path(out, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()
    exit_process(0)  # as the CLI's ranks do


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """Runs 2 processes (see ``_rank_main``) after a 1-process run of ``STEPS`` steps, whose
    checkpoint they resume; returns the output directory, each rank's results and the
    1-process losses."""
    out = tmp_path_factory.mktemp("ddp")
    torch.set_num_threads(1)
    single = Recorder()
    _lm_trainer(out / "single", recorder=single).fit()
    shutil.copytree(out / "single", out / "single_resumed")
    mp.spawn(_rank_main, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return out, ranks, single.losses


def _saved_loss_state(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last").trainer_state["loss_fn"]


def test_two_processes_train_the_same_language_model_as_one(two_process_run):
    _, ranks, single_losses = two_process_run
    assert len(ranks[0]["lm"]) == STEPS
    assert ranks[0]["lm"] == pytest.approx(single_losses, rel=LOSS_TOLERANCE)
    assert ranks[1]["lm"] == ranks[0]["lm"]  # every rank logs the global batch loss
    assert single_losses[-1] < single_losses[0] - 0.05  # and it is actually learning


def test_indivisible_batches_are_weighted_by_rows(two_process_run):
    _, ranks, _ = two_process_run
    single = Recorder()
    _regression_trainer(single).fit()
    assert ranks[0]["regression"] == pytest.approx(single.losses, rel=LOSS_TOLERANCE)


def test_a_stopped_and_resumed_two_process_run_repeats_the_uninterrupted_one(two_process_run):
    _, ranks, _ = two_process_run
    full = ranks[0]["lm_full"]
    assert len(full) == STEPS + 4 and full[:STEPS] == ranks[0]["lm"]
    # the carried hidden state comes back too: the same processes, the same sums, exactly
    assert ranks[0]["resumed"] == full[STEPS:]
    assert ranks[1]["resumed"] == ranks[0]["resumed"]


def test_the_checkpoint_holds_every_ranks_carried_state_in_row_order(two_process_run):
    out, _, _ = two_process_run
    saved = _saved_loss_state(out / "lm_at_12")
    states = [load_file(str(out / f"rank{r}_state.safetensors")) for r in range(2)]
    assert set(saved) == {"h", "c"} and saved["h"].shape == (1, 6, 16)  # (layers, rows, hidden)
    for name in ("h", "c"):  # rank 0 carried streams 0-2, rank 1 streams 3-5
        assert torch.equal(saved[name], torch.cat([states[0][name], states[1][name]], dim=1))


def test_gather_rows_pads_uneven_shares_and_drops_weight_zero_copies(two_process_run):
    _, ranks, _ = two_process_run
    gathered = ranks[0]["gather"]
    assert torch.tensor(gathered["uneven"]).shape == (2, 7, 2)
    assert gathered["uneven"][0] == [[0.0, 0.0]] * 3 + [[1.0, 1.0]] * 4
    assert gathered["copy"] == [[[6.0, 6.0]]]  # rank 0 held a copy of rank 1's only row
    assert gathered["mixed"] == []  # ranks disagree on the state's names: none is stored


def test_a_replicated_loss_state_is_saved_and_restored_by_a_distributed_run(two_process_run):
    out, ranks, _ = two_process_run
    assert int(_saved_loss_state(out / "counting")["step"]) == STEPS + 2
    assert [rank["counting_steps"] for rank in ranks] == [STEPS + 2, STEPS + 2]


def test_distributed_checkpoint_loads_and_resumes_in_one_process(two_process_run, tmp_path):
    out, ranks, _ = two_process_run
    last = out / "lm" / "checkpoints" / "last"
    checkpoint = load_checkpoint(last, _language_model())
    assert not any(name.startswith("module.") for name in checkpoint.model_state)
    assert checkpoint.metadata["kind"] == "lm"
    assert checkpoint.metadata["trainer"]["step"] == STEPS + 4
    with open(out / "lm" / "metrics.csv", newline="") as handle:  # rank 0 alone logs
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, STEPS + 5))
    # the step-12 checkpoint of 2 processes resumes in 1, starting from both ranks' rows
    shutil.copytree(out / "lm_at_12", tmp_path / "lm")
    probe, recorder = StateProbe(), Recorder()
    result = _lm_trainer(tmp_path / "lm", max_steps=STEPS + 4, recorder=recorder,
                         loss_fn=probe).fit(resume=True)
    assert result.global_step == STEPS + 4
    saved = _saved_loss_state(out / "lm_at_12")
    assert probe.first_state.keys() == saved.keys()
    assert all(torch.equal(probe.first_state[name], saved[name]) for name in saved)
    assert recorder.losses == pytest.approx(ranks[0]["lm_full"][STEPS:], rel=LOSS_TOLERANCE)


def test_single_process_checkpoint_resumes_in_two_processes_with_its_state(two_process_run):
    out, ranks, _ = two_process_run
    saved = _saved_loss_state(out / "single")  # the 1-process run at step 12
    restored = [load_file(str(out / f"rank{r}_restored.safetensors")) for r in range(2)]
    for name in ("h", "c"):  # each rank started from its rows of the 1-process state
        assert torch.equal(restored[0][name], saved[name][:, :3])
        assert torch.equal(restored[1][name], saved[name][:, 3:])
    assert ranks[0]["from_single"] == pytest.approx(ranks[0]["lm_full"][STEPS:],
                                                    rel=LOSS_TOLERANCE)


def test_resume_with_another_batch_size_warns_and_starts_the_state_afresh(tmp_path):
    torch.set_num_threads(1)
    _lm_trainer(tmp_path / "lm", max_steps=3).fit()
    probe = StateProbe()
    resumed = _lm_trainer(tmp_path / "lm", max_steps=5, loss_fn=probe, batch_size=4)
    with pytest.warns(RuntimeWarning, match=r"carried loss state has shapes .*'h': \(1, 6, 16\)"
                                            r".* but the batches now have 4 rows"):
        result = resumed.fit(resume=True)
    assert result.global_step == 5 and probe.first_state == {}


def test_backend_is_nccl_on_cuda_and_gloo_on_cpu():
    from rnnkit.train.distributed import backend_for

    assert backend_for(torch.device("cuda:0")) == "nccl"
    assert backend_for(torch.device("cpu")) == "gloo"
