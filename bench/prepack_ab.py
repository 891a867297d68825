"""Prepacked layers (``rnnkit.nn.prepack``) against plain ones, small-batch inference.

A whole-sequence inference call below 16 rows runs as one native call that first copies
the weights into packed panels. A prepacked layer keeps that copy between calls. This times
``layer(x)`` under ``torch.no_grad()`` for a plain and a prepacked layer with the same
weights (backend ``native``, torch's thread count as given), interleaved: each repetition
times ``--calls`` back-to-back calls of one, then of the other, in alternating order. It
prints medians over repetitions and ``plain / prepacked`` (> 1: prepacking is faster), the
outputs checked bit-equal first::

    python bench/prepack_ab.py
    python bench/prepack_ab.py --cells LSTM:64,LSTM:256 --batches 1,4 --steps 100 --reps 15
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit import nn as rnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab_table import paired_summary, print_table


def mean_call_us(layer, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        layer(x)
    return (time.perf_counter() - start) / calls * 1e6


def measure(cell: str, hidden: int, batch: int, steps: int, reps: int) -> dict:
    """Medians (µs per call) of the plain and the prepacked layer at one shape."""
    torch.manual_seed(0)
    plain = getattr(rnn, cell)(hidden, hidden, backend="native")
    prepacked = rnn.prepack(copy.deepcopy(plain))
    x = torch.randn(steps, batch, hidden)
    with torch.no_grad():
        if not torch.equal(plain(x)[0], prepacked(x)[0]):
            raise AssertionError(f"{cell} H={hidden} B={batch}: outputs differ")
        # About 20 ms of calls per sample.
        calls = max(5, int(0.02 / (mean_call_us(plain, x, 20) * 1e-6)))
        samples = {"plain": [], "prepacked": []}
        for rep in range(reps):
            order = ("plain", "prepacked") if rep % 2 == 0 else ("prepacked", "plain")
            for name in order:
                layer = plain if name == "plain" else prepacked
                samples[name].append(mean_call_us(layer, x, calls))
    return paired_summary(samples, "plain", "prepacked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", default="RNN:64,GRU:64,LSTM:64,GRU:256,LSTM:256")
    parser.add_argument("--batches", default="1")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"T={args.steps}, {args.threads} torch threads, {args.reps} interleaved repetitions, "
          "µs per call (median)\n")
    print_table(args.cells, args.batches,
                lambda cell, hidden, batch: measure(cell, hidden, batch, args.steps, args.reps),
                "plain", "prepacked", 1)


if __name__ == "__main__":
    main()
