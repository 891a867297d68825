"""Can the int8 streamer's two threads run on rnnkit's own pool by default? A streaming loop with
torch work between steps, on each thread backend.

The pool's workers spin for a while after each job, so a bare loop of LSTM H=256 steps runs
faster on it than on torch's OpenMP team (bench/results/README.md, "Follow-up (12:40)"). A real
streaming loop does more between steps: here a language-model head (``Linear(256, V)``, an
argmax and an embedding lookup), which torch runs on its own OpenMP threads from some size on.
One process, 2 threads, the backends alternated by repetition (which goes first alternates
too); per repetition the mean time of a loop iteration, µs; medians and minima over the
repetitions.

    python bench/streaming_backend_mixed.py --vocab 256 4096 --reps 9
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnkit import engine
from rnnkit import nn as rnn

BACKENDS = ("openmp", "pool")


def _bare(streamer, x: torch.Tensor, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        streamer(x)
    return (time.perf_counter() - start) / steps * 1e6


def _with_head(streamer, x: torch.Tensor, head, embed, steps: int) -> float:
    start = time.perf_counter()
    step_input = x
    for _ in range(steps):
        step_input = embed(head(streamer(step_input)).argmax(-1))  # (1, 256)
    return (time.perf_counter() - start) / steps * 1e6


def measure(vocab: int, reps: int) -> dict[tuple[str, str], list[float]]:
    torch.manual_seed(0)
    quantized = rnn.quantize_int8(rnn.LSTM(256, 256, backend="native").eval())
    head, embed = torch.nn.Linear(256, vocab), torch.nn.Embedding(vocab, 256)
    x = torch.randn(1, 256)
    times: dict[tuple[str, str], list[float]] = {(b, k): [] for b in BACKENDS
                                                 for k in ("bare", "head")}
    with torch.no_grad():
        for rep in range(reps):
            for backend in BACKENDS if rep % 2 == 0 else BACKENDS[::-1]:
                engine.set_thread_backend(backend)
                streamer = quantized.streamer(1)
                _bare(streamer, x, 200)  # warm-up
                times[(backend, "bare")].append(_bare(streamer, x, 2000))
                _with_head(streamer, x, head, embed, 50)
                times[(backend, "head")].append(_with_head(streamer, x, head, embed, 500))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print("| vocabulary | loop | OpenMP µs, median (min) | pool µs, median (min) | pool / OpenMP |")
    print("|---:|---|---:|---:|---:|")
    for vocab in args.vocab:
        times = measure(vocab, args.reps)
        for kind in ("bare", "head"):
            openmp, pool = times[("openmp", kind)], times[("pool", kind)]
            ratio = statistics.median(p / o for p, o in zip(pool, openmp, strict=True))
            print(f"| {vocab} | {'steps only' if kind == 'bare' else 'step + head'} "
                  f"| {statistics.median(openmp):.2f} ({min(openmp):.2f}) "
                  f"| {statistics.median(pool):.2f} ({min(pool):.2f}) | {ratio:.2f} |",
                  flush=True)
    engine.set_thread_backend("openmp")


if __name__ == "__main__":
    main()
