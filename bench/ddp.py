"""Data-parallel throughput: samples/s of one char-LM training run in 1 vs 2 processes.

Model: the task's char-level LSTM language model (embedding 64, 2 x hidden, vocabulary of the
bundled Shakespeare sample) trained by :class:`rnnkit.train.Trainer` on a
:class:`~rnnkit.data.LanguageModelStream` (global batch ``--batch`` streams x ``--seq`` chars).
Each setup runs in fresh processes; a data-parallel run uses gloo on 127.0.0.1, and each rank
trains its ``batch / N`` streams. Timed from the end of the ``--warmup``-th step to the last.

    python bench/ddp.py                  # writes bench/results/ddp.md
    python bench/ddp.py --steps 10 --no-write

samples/s counts sequences of the global batch (tokens/s = samples/s x seq).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.data import LanguageModelStream, read_text
from rnnkit.models import LanguageModel, LanguageModelConfig, TruncatedBPTTLoss
from rnnkit.train import Callback, TrainConfig, Trainer

RESULTS = Path(__file__).resolve().parent / "results"
TEXT = Path(__file__).resolve().parents[1] / "src/rnnkit/data/samples/shakespeare/train.txt"
SETUPS = (("1 process", 1, 2), ("1 process", 1, 1), ("2 processes (gloo)", 2, 1))


class StepClock(Callback):
    """``perf_counter`` at the end of every step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_batch_end(self, trainer, record) -> None:
        self.times.append(time.perf_counter())


def _worker(rank: int, world: int, port: int, threads: int, options: dict, out: str) -> None:
    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world)
    text = read_text(TEXT)
    alphabet = sorted(set(text))
    ids = [alphabet.index(c) for c in text]
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=len(alphabet), embedding_size=64,
                                              hidden_size=options["hidden"], num_layers=2,
                                              cell="lstm", dropout=0.0))
    source = LanguageModelStream(ids, options["batch"], options["seq"], seed=0)
    clock = StepClock()
    config = TrainConfig(lr=2e-3, max_steps=options["warmup"] + options["steps"],
                         device="cpu", progress=False)
    Trainer(model, source, config, loss_fn=TruncatedBPTTLoss(), callbacks=[clock]).fit()
    if rank == 0:
        Path(out).write_text(json.dumps(clock.times))
    if world > 1:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(world: int, threads: int, options: dict) -> float:
    """samples/s of one fresh run with ``world`` processes of ``threads`` threads each."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "times.json")
        mp.spawn(_worker, args=(world, _free_port(), threads, options, out), nprocs=world)
        times = json.loads(Path(out).read_text())
    warmup, steps = options["warmup"], options["steps"]
    seconds = times[warmup + steps - 1] - times[warmup - 1]
    return options["batch"] * steps / seconds


def render(rows: list[tuple[str, int, int, float]], options: dict, command: str) -> str:
    baseline = rows[0][3]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [
        "# Data-parallel throughput (bench/ddp.py)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; load average at the end {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (1/5/15 min).",
        f"Model: char-LM, 2-layer LSTM hidden {options['hidden']}, embedding 64; global batch "
        f"{options['batch']} x {options['seq']} chars; {options['steps']} timed steps after "
        f"{options['warmup']} warm-up; median of {options['repeats']} runs.",
        "",
        "| setup | processes | threads each | samples/s | tokens/s | vs 1 process x 2 threads |",
        "|---|---|---|---|---|---|",
    ]
    for name, world, threads, rate in rows:
        lines.append(f"| {name} | {world} | {threads} | {rate:.1f} | "
                     f"{rate * options['seq']:.0f} | {rate / baseline:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    options = vars(parser.parse_args())
    write = options.pop("write")
    rates: dict[int, list[float]] = {i: [] for i in range(len(SETUPS))}
    for _ in range(options["repeats"]):  # interleaved, so machine load hits every setup
        for index, (_, world, threads) in enumerate(SETUPS):
            rates[index].append(measure(world, threads, options))
    rows = [(name, world, threads, statistics.median(rates[i]))
            for i, (name, world, threads) in enumerate(SETUPS)]
    command = "python " + " ".join(["bench/ddp.py", *sys.argv[1:]])
    report = render(rows, options, command)
    print(report)
    if write:
        (RESULTS / "ddp.md").write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
