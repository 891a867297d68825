"""One thread against two for small layers at batch >= 32, where the kernels split whole rows.

``engine.threads.choose_threads`` gives a layer a second thread once each thread gets
``ROWS_PER_THREAD`` whole rows (the kernels then need no barrier per step), not only when the
gate units are many enough to split. This times the engine at a forced 1 and 2 threads, in
one process, alternating which goes first, medians over the rounds and the min-max of the
per-round ratio (> 1: two threads are faster). Inference keeps one layer per thread count
(the inference fast path keeps the plan of its first call); training forces the count on
every call.

    python bench/thread_count_ab.py --rounds 9
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import rnnkit.engine.ops as ops
import rnnkit.nn as rnn

POINTS = (("GRU", 64), ("RNN", 64), ("RNN", 128))
BATCHES = (32, 128)


def forced(threads: int):
    return lambda *args: threads


def seconds_per_call(function, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


Ratio = tuple[float, float, float]


def compare(runs: dict[int, Callable[[], object]], rounds: int, calls: int) -> Ratio:
    """The per-round ratio of 1-thread to 2-thread time: median, min, max."""
    times: dict[int, list[float]] = {1: [], 2: []}
    for index in range(rounds):
        for threads in ((1, 2) if index % 2 == 0 else (2, 1)):
            ops.choose_threads = forced(threads)
            times[threads].append(seconds_per_call(runs[threads], calls))
    ratios = [one / two for one, two in zip(times[1], times[2], strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def measure(mode: str, hidden: int, batch: int, rounds: int) -> tuple[Ratio, Ratio]:
    """(inference, training) ratios of one layer, seq 100, input = hidden."""
    torch.manual_seed(0)
    base = getattr(rnn, mode)(hidden, hidden, backend="native")
    x = torch.randn(100, batch, hidden)
    x_grad = x.clone().requires_grad_()
    layers = {}
    for threads in (1, 2):  # the fast path keeps the plan of the first call
        layers[threads] = copy.deepcopy(base)
        ops.choose_threads = forced(threads)
        with torch.no_grad():
            layers[threads](x)

    def infer(layer) -> None:
        with torch.no_grad():
            layer(x)

    def train() -> None:
        base(x_grad)[0].sum().backward()

    inference = compare({n: (lambda layer=layer: infer(layer)) for n, layer in layers.items()},
                        rounds, 30)
    return inference, compare({1: train, 2: train}, rounds, 5)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    chosen = ops.choose_threads
    for mode, hidden in POINTS:
        for batch in BATCHES:
            inference, training = measure(mode, hidden, batch, args.rounds)
            ops.choose_threads = chosen
            picks = chosen({"RNN": "RNN_TANH"}.get(mode, mode), batch, hidden, hidden)
            print(f"{mode} H={hidden} B={batch}: auto picks {picks} thread(s); 2 threads vs 1: "
                  f"inference {inference[0]:.2f}x ({inference[1]:.2f}-{inference[2]:.2f}), "
                  f"training {training[0]:.2f}x ({training[1]:.2f}-{training[2]:.2f})",
                  flush=True)


if __name__ == "__main__":
    main()
