"""Alternating sweeps of the weight panels on and off, one process, interleaved.

From 3/4 of L2 on, each step reads a thread's weight panels in the direction opposite to
the step before (``gate_products``), so the part of them still cached is read first. This
times ``layer(x)`` (inference, ``torch.no_grad()``) or a forward and backward pass
(``--training``) at T=100 with the engine planning for the detected L2 (``on``) and for an L2
too large to ever pass (``off``, ``rnnkit.engine.set_l2_cache_bytes``), alternating the two
per repetition, and prints medians with ``off / on`` (> 1: alternating is faster). The
outputs of both are checked bit-equal first. ``--streaming`` times a ``layer.streamer(batch)``
step instead (µs; the streamer alternates by a parity each thread keeps)::

    python bench/alternate_sweeps_ab.py
    python bench/alternate_sweeps_ab.py --cells LSTM:512 --batches 1,4,32 --training
    python bench/alternate_sweeps_ab.py --cells LSTM:256,LSTM:512,GRU:512,LSTM:1024 \
        --batches 1 --streaming
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit import engine
from rnnkit import nn as rnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab_table import paired_summary, print_table

NEVER = 1 << 50  # an L2 no thread's panels reach 3/4 of


def runner(layer, x: torch.Tensor, training: bool):
    if training:
        def step():
            layer(x)[0].sum().backward()
    else:
        def step():
            with torch.no_grad():
                layer(x)
    return step


def measure_streaming(cell: str, hidden: int, batch: int, reps: int) -> dict:
    """Medians (µs per step) of 200 streamer steps, alternating off and on."""
    torch.manual_seed(0)
    layer = getattr(rnn, cell)(hidden, hidden, backend="native")
    inputs = torch.randn(200, batch, hidden)
    outputs = []
    for size in (NEVER, 0):
        engine.set_l2_cache_bytes(size)
        streamer = layer.streamer(batch)
        outputs.append(torch.stack([streamer(x) for x in inputs]))
    if not torch.equal(*outputs):
        raise AssertionError(f"{cell} H={hidden} B={batch}: streamed outputs differ")
    streamer = layer.streamer(batch)
    samples = {"off": [], "on": []}
    for rep in range(reps):
        for name in (("off", "on") if rep % 2 == 0 else ("on", "off")):
            engine.set_l2_cache_bytes(NEVER if name == "off" else 0)
            for x in inputs[:20]:
                streamer(x)
            start = time.perf_counter()
            for x in inputs:
                streamer(x)
            samples[name].append((time.perf_counter() - start) / len(inputs) * 1e6)
    engine.set_l2_cache_bytes(0)
    return paired_summary(samples, "off", "on")


def measure(cell: str, hidden: int, batch: int, reps: int, training: bool) -> dict:
    torch.manual_seed(0)
    layer = getattr(rnn, cell)(hidden, hidden, backend="native")
    x = torch.randn(100, batch, hidden, requires_grad=training)
    outputs = {}
    for name, size in (("off", NEVER), ("on", 0)):
        engine.set_l2_cache_bytes(size)
        with torch.no_grad():
            outputs[name] = layer(x)[0]
    if not torch.equal(outputs["off"], outputs["on"]):
        raise AssertionError(f"{cell} H={hidden} B={batch}: outputs differ")
    step = runner(layer, x, training)
    start = time.perf_counter()
    step()
    calls = max(2, int(0.2 / (time.perf_counter() - start)))
    samples = {"off": [], "on": []}
    for rep in range(reps):
        for name in (("off", "on") if rep % 2 == 0 else ("on", "off")):
            engine.set_l2_cache_bytes(NEVER if name == "off" else 0)
            step()
            start = time.perf_counter()
            for _ in range(calls):
                step()
            samples[name].append((time.perf_counter() - start) / calls * 1e3)
    engine.set_l2_cache_bytes(0)
    return paired_summary(samples, "off", "on")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", default="GRU:384,LSTM:384,GRU:512,LSTM:512,RNN:1024")
    parser.add_argument("--batches", default="1,4,8,32")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--training", action="store_true", help="forward and backward")
    parser.add_argument("--streaming", action="store_true", help="streamer steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = "training" if args.training else "streaming" if args.streaming else "inference"
    unit = "µs per step" if args.streaming else "ms per call"
    print(f"{task}, {'' if args.streaming else 'T=100, '}{args.threads} torch threads, L2 "
          f"{engine.l2_cache_bytes()} bytes, {args.reps} interleaved repetitions, {unit} "
          "(median)\n")
    if args.streaming:
        print_table(args.cells, args.batches,
                    lambda cell, hidden, batch: measure_streaming(cell, hidden, batch, args.reps),
                    "off", "on", 1)
        return
    print_table(args.cells, args.batches,
                lambda cell, hidden, batch: measure(cell, hidden, batch, args.reps, args.training),
                "off", "on", 2)


if __name__ == "__main__":
    main()
