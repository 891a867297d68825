"""Pipelined whole-sequence inference against one thread and the unit split, one process.

A small-batch inference call runs as one native ``infer`` call. Too small to split its units
between threads (a barrier per step), it can still use a second thread: that one projects
the input a chunk of steps ahead of the recurrence (``ForwardArgs::pipeline``; the bits are
one thread's). This times, interleaved, median over repetitions of the mean of ``--calls``
back-to-back calls, at 2 torch threads:

- ``one``: ``threads=1``;
- ``split``: ``threads=2``, units split between the threads;
- ``pipe``: ``threads=2, pipeline=1``;

and prints each time with ``one / pipe`` (> 1: the pipeline is faster). The outputs of the
three are checked bit-equal first. Used to set ``rnnkit.engine.threads.PIPELINE_MIN_MACS``::

    python bench/pipeline_ab.py --cells GRU:64,LSTM:64,RNN:64 --steps 2,8,16,32,100
    python bench/pipeline_ab.py --cells GRU:64,LSTM:64,GRU:128 --batches 1,4,8 --steps 100

``--concurrent N`` instead counts calls per second made by N Python threads at once, each
calling ``one`` or ``pipe`` back to back (a server answering batch-1 requests in parallel:
the pipeline must not cost it throughput)::

    python bench/pipeline_ab.py --cells GRU:64 --steps 100 --concurrent 1,2
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time

import torch

from rnnkit.engine._loader import require_native

MODE_IDS = {"RNN": 0, "LSTM": 2, "GRU": 3}
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def call_arguments(cell: str, hidden: int, batch: int, steps: int) -> dict:
    """Keyword arguments of ``infer`` for one layer-direction with input size = hidden."""
    generator = torch.Generator().manual_seed(0)
    rows = GATES[cell] * hidden

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator) * scale

    return dict(mode=MODE_IDS[cell], reverse=0, threads=1, x=randn(steps, batch, hidden),
                h0=torch.zeros(batch, hidden),
                c0=torch.zeros(batch, hidden) if cell == "LSTM" else None,
                w_ih=randn(rows, hidden, scale=0.1), w_hh=randn(rows, hidden, scale=0.1),
                b_ih=randn(rows), b_hh=randn(rows), w_hr=None)


def mean_call_us(native, arguments: dict, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        native.infer(**arguments)
    return (time.perf_counter() - start) / calls * 1e6


def measure(native, cell: str, hidden: int, batch: int, steps: int, reps: int,
            calls: int) -> dict[str, float]:
    base = call_arguments(cell, hidden, batch, steps)
    variants = {"one": base, "split": dict(base, threads=2),
                "pipe": dict(base, threads=2, pipeline=1)}
    reference = native.infer(**base)
    for name, arguments in variants.items():
        for got, want in zip(native.infer(**arguments), reference, strict=True):
            if want is not None and not torch.equal(got, want):
                raise AssertionError(f"{cell} H={hidden} B={batch} T={steps}: {name} differs")
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, arguments in variants.items():
            native.infer(**arguments)  # the helper thread awake, as in a serving loop
            samples[name].append(mean_call_us(native, arguments, calls))
    return {name: statistics.median(values) for name, values in samples.items()}


def calls_per_second(native, arguments: list[dict], seconds: float = 1.0) -> float:
    """Calls per second made by one Python thread per entry of ``arguments``, all at once."""
    counts = [0] * len(arguments)
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        while time.perf_counter() < stop:
            native.infer(**arguments[index])
            counts[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(arguments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def concurrent(native, cell: str, hidden: int, steps: int, callers: int, reps: int) -> None:
    base = [call_arguments(cell, hidden, 1, steps) for _ in range(callers)]
    variants = {"one": base, "pipe": [dict(a, threads=2, pipeline=1) for a in base]}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, arguments in variants.items():
            samples[name].append(calls_per_second(native, arguments))
    one, pipe = (statistics.median(samples[name]) for name in ("one", "pipe"))
    print(f"| {cell} | {hidden} | {steps} | {callers} | {one:.0f} | {pipe:.0f} | "
          f"{pipe / one:.2f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="GRU:64,LSTM:64,RNN:64",
                        help="comma-separated CELL:HIDDEN (CELL one of RNN, GRU, LSTM)")
    parser.add_argument("--batches", default="1")
    parser.add_argument("--steps", default="16,32,100")
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrent", default=None,
                        help="comma-separated numbers of Python threads calling at once")
    args = parser.parse_args()
    torch.set_num_threads(2)
    native = require_native()
    cells = [(cell, int(hidden)) for cell, hidden in
             (spec.split(":") for spec in args.cells.split(","))]
    steps = [int(value) for value in args.steps.split(",")]
    if args.concurrent:
        print("calls per second, batch 1, median of", args.reps)
        print("| cell | H | T | Python threads | one | pipe | pipe / one |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        callers = [int(value) for value in args.concurrent.split(",")]
        for (cell, hidden), length, count in itertools.product(cells, steps, callers):
            concurrent(native, cell, hidden, length, count, args.reps)
        return
    print(f"engine ISA {native.isa()}, thread backend {native.thread_backend()}, "
          f"torch {torch.__version__}, 2 threads, µs per call (median of {args.reps})")
    print("| cell | H | B | T | one | split | pipe | one / pipe |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    batches = [int(value) for value in args.batches.split(",")]
    for (cell, hidden), batch, length in itertools.product(cells, batches, steps):
        times = measure(native, cell, hidden, batch, length, args.reps, args.calls)
        print(f"| {cell} | {hidden} | {batch} | {length} | {times['one']:.1f} | "
              f"{times['split']:.1f} | {times['pipe']:.1f} | "
              f"{times['one'] / times['pipe']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
