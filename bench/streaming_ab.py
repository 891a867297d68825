"""Before/after probes for the streaming path (bench/results/streaming.md), small enough to run
in alternating processes against two checkouts.

``cells``: CPU time of the calling thread per ``streamer(x_t)`` call (1 thread), fp32 and
int8, medians of 7 samples, one process, the candidates interleaved; prints one JSON line.
Run it alternately from two trees to compare them (a process loads one build)::

    for i in 1 2 3; do
      PYTHONPATH=/path/to/old/src python bench/streaming_ab.py cells >> ab.jsonl
      PYTHONPATH=/path/to/new/src python bench/streaming_ab.py cells >> ab.jsonl
    done
    python bench/streaming_ab.py summary ab.jsonl

``so``: this tree's streamers against the same streamers running another build of the engine
(``--old path/to/_native.so``, e.g. main's, copied aside before rebuilding), in one process:
the old build is loaded as a second extension module and each candidate streamer's native
call is pointed at it (the streamer's own C call and the weights are shared), so both run
interleaved on the same machine state. CPU time per call at 1 thread, wall clock at 2
(``--threads``; the plan's own rule then decides each cell's thread count), medians of paired
ratios and minima::

    python bench/streaming_ab.py so --old /tmp/old_native.so --reps 15

``packed``: the fp32 streamer on packed panels against the same streamer on torch's layout,
in one process (``python bench/streaming_ab.py packed``).

``int8-threads``: wall clock per int8 ``streamer(x_t)`` call with the int8 products split over
1 and over 2 threads (same weights; outputs checked equal), interleaved, medians::

    python bench/streaming_ab.py int8-threads --cell LSTM:256
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from functools import partial

import torch

from rnnkit import nn as rnn

CELLS = (("RNN", 16), ("RNN", 64), ("RNN", 128), ("GRU", 64), ("GRU", 128), ("LSTM", 256))


def cells() -> None:
    import rnnkit

    torch.set_num_threads(1)
    candidates = {}
    for mode, hidden in CELLS:
        torch.manual_seed(0)
        layer = getattr(rnn, mode)(hidden, hidden, backend="native").eval()
        x = torch.randn(1, hidden)
        candidates[f"{mode}{hidden} fp32"] = (layer.streamer(1), x)
        candidates[f"{mode}{hidden} int8"] = (rnn.quantize_int8(layer).streamer(1), x)
    times = {name: [] for name in candidates}
    with torch.no_grad():
        for _ in range(7):
            for name, (streamer, x) in candidates.items():
                calls = 4000 if "LSTM" in name else 20000
                start = time.thread_time()
                for _ in range(calls):
                    streamer(x)
                times[name].append((time.thread_time() - start) / calls * 1e6)
    print(json.dumps({"src": rnnkit.__file__, "load": os.getloadavg()[0],
                      **{name: statistics.median(v) for name, v in times.items()}}))


def summary(path: str) -> None:
    with open(path) as lines:
        rows = [json.loads(line) for line in lines]
    trees = sorted({row["src"] for row in rows})
    print("load averages:", [round(row["load"], 1) for row in rows])
    names = [k for k in rows[0] if k not in ("src", "load")]
    print("cell | " + " | ".join(trees) + " | last/first (trees in sorted order)")
    for name in names:
        medians = [statistics.median(r[name] for r in rows if r["src"] == t) for t in trees]
        print(f"{name} | " + " | ".join(f"{m:.2f}" for m in medians)
              + f" | {medians[-1] / medians[0]:.2f}")


def int8_threads(cell: str, reps: int, calls: int = 20000) -> None:
    mode, hidden = cell.split(":")
    hidden = int(hidden)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    layer = rnn.quantize_int8(getattr(rnn, mode)(hidden, hidden).eval())
    streamers = {}
    for threads in (1, 2):
        streamer = layer.streamer(1)
        plan = streamer._plan
        plan._plan = (*plan._plan[:6], threads, *plan._plan[7:])  # the plan's thread count
        streamer._run = _int8_runner(rnnkit_native(), plan._plan)
        streamers[threads] = streamer
    x = torch.randn(1, hidden)
    times = {1: [], 2: []}
    before = os.getloadavg()[0]
    with torch.no_grad():
        assert torch.equal(streamers[1](x), streamers[2](x))
        for rep in range(reps):
            for threads in ((1, 2) if rep % 2 == 0 else (2, 1)):
                start = time.perf_counter()
                for _ in range(calls):
                    streamers[threads](x)
                times[threads].append((time.perf_counter() - start) / calls * 1e6)
    print(f"load {before:.2f} -> {os.getloadavg()[0]:.2f}")
    for threads, values in times.items():
        p10 = sorted(values)[len(values) // 10]
        print(f"{cell} int8, {threads} thread(s): median {statistics.median(values):.2f} µs, "
              f"p10 {p10:.2f}, min {min(values):.2f}")
    ratios = [b / a for a, b in zip(times[1], times[2], strict=True)]
    print(f"2 threads / 1 thread, median of paired ratios: {statistics.median(ratios):.2f}")


def rnnkit_native():
    from rnnkit.engine._loader import require_native

    return require_native()


def _int8_runner(module, plan: tuple):
    """The int8 step of ``module`` (a build of ``_native``) for a plan tuple: a StreamPlan
    where the build has ``int8.stream_plan``, else its per-call ``int8.stream`` (older builds)."""
    if hasattr(module.int8, "stream_plan"):
        return module.int8.stream_plan(plan)
    return partial(module.int8.stream, plan)


SO_CELLS = (("RNN", 64), ("RNN", 128), ("GRU", 64), ("GRU", 128), ("LSTM", 64), ("LSTM", 256))


def _load_old(path: str):
    """The extension at ``path`` as a second module (its own copy of every symbol)."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("rnnkit_old._native", path)
    spec = importlib.util.spec_from_file_location("rnnkit_old._native", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def so(old_path: str, reps: int, threads: int, cells: str | None,
       calls_per_sample: int | None = None) -> None:
    old = _load_old(old_path)
    torch.set_num_threads(threads)
    chosen = SO_CELLS if cells is None else tuple(
        (m, int(h)) for m, h in (c.split(":") for c in cells.split(",")))
    candidates = {}
    for mode, hidden in chosen:
        torch.manual_seed(0)
        layer = getattr(rnn, mode)(hidden, hidden, backend="native").eval()
        x = torch.randn(1, hidden)
        quantized = rnn.quantize_int8(layer)
        for kind, make in (("fp32", layer.streamer), ("int8", quantized.streamer)):
            new_streamer, old_streamer = make(1), make(1)
            plan = old_streamer._plan
            old_streamer._run = (_int8_runner(old, plan._plan) if kind == "int8"
                                 else partial(old.stream, plan._plan))
            with torch.no_grad():
                assert torch.equal(new_streamer(x), old_streamer(x)), (mode, hidden, kind)
            candidates[f"{mode}{hidden} {kind}"] = (new_streamer, old_streamer, x)
    clock = time.thread_time if threads == 1 else time.perf_counter
    before = os.getloadavg()[0]
    times = _paired_times({name: (("old", old), ("new", new), x)
                           for name, (new, old, x) in candidates.items()}, reps, clock,
                          lambda name: calls_per_sample or (2000 if "256" in name else 10000))
    print(f"threads {threads}, clock {'cpu' if threads == 1 else 'wall'}, reps {reps}, "
          f"load {before:.2f} -> {os.getloadavg()[0]:.2f}")
    print("| cell | old median (min) µs | new median (min) µs | new/old, median of paired ratios |")
    print("|---|---:|---:|---:|")
    for name, kinds in times.items():
        o, n = (statistics.median(kinds[k]) for k in ("old", "new"))
        ratios = [b / a for a, b in zip(kinds["old"], kinds["new"], strict=True)]
        print(f"| {name} | {o:.2f} ({min(kinds['old']):.2f}) | {n:.2f} ({min(kinds['new']):.2f}) "
              f"| {statistics.median(ratios):.2f} |")


def _paired_times(pairs: dict, reps: int, clock, calls_of) -> dict[str, dict[str, list]]:
    """µs per call of two streamers per cell, ``name -> ((label, streamer), (label,
    streamer), x)``, the pair's order flipped every repetition, no autograd."""
    times = {name: {first[0]: [], second[0]: []} for name, (first, second, _) in pairs.items()}
    with torch.no_grad():
        for rep in range(reps):
            for name, (first, second, x) in pairs.items():
                calls = calls_of(name)
                for label, streamer in (first, second) if rep % 2 == 0 else (second, first):
                    start = clock()
                    for _ in range(calls):
                        streamer(x)
                    times[name][label].append((clock() - start) / calls * 1e6)
    return times


def packed(reps: int) -> None:
    """fp32 streamer on packed panels against the same streamer on torch's layout (the plan
    step() uses), CPU time per call, 1 thread, interleaved, medians."""
    from rnnkit.nn.streaming import _build_plan

    torch.set_num_threads(1)
    cells = (("RNN", 64), ("RNN", 128), ("GRU", 64), ("GRU", 128), ("LSTM", 64), ("LSTM", 256))
    candidates = {}
    for mode, hidden in cells:
        torch.manual_seed(0)
        layer = getattr(rnn, mode)(hidden, hidden, backend="native").eval()
        x = torch.randn(1, hidden)
        packed_streamer, in_place = layer.streamer(1), layer.streamer(1)
        plan = _build_plan(layer, "native", 1, packed=False)
        in_place._plan, in_place._run = plan, plan.native
        candidates[f"{mode}{hidden}"] = (packed_streamer, in_place, x)
    before = os.getloadavg()[0]
    times = _paired_times({name: (("packed", packed), ("torch layout", in_place), x)
                           for name, (packed, in_place, x) in candidates.items()}, reps,
                          time.thread_time, lambda name: 2000 if "256" in name else 20000)
    print(f"load {before:.2f} -> {os.getloadavg()[0]:.2f}")
    for name, kinds in times.items():
        p, t = (statistics.median(kinds[k]) for k in ("packed", "torch layout"))
        ratios = [a / b for a, b in zip(kinds["packed"], kinds["torch layout"], strict=True)]
        print(f"{name}: packed {p:.2f} µs, torch layout {t:.2f} µs, paired ratio "
              f"{statistics.median(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("cells")
    parser_summary = sub.add_parser("summary")
    parser_summary.add_argument("path")
    parser_packed = sub.add_parser("packed")
    parser_packed.add_argument("--reps", type=int, default=9)
    parser_so = sub.add_parser("so")
    parser_so.add_argument("--old", required=True, help="the other build's _native .so")
    parser_so.add_argument("--reps", type=int, default=15)
    parser_so.add_argument("--threads", type=int, default=1)
    parser_so.add_argument("--cells", default=None, help="comma-separated MODE:H")
    parser_so.add_argument("--calls", type=int, default=None,
                           help="calls per sample (default 2000 at H=256, else 10000); few "
                                "calls and many reps make the minimum a busy machine's best case")
    parser_threads = sub.add_parser("int8-threads")
    parser_threads.add_argument("--cell", default="LSTM:256")
    parser_threads.add_argument("--reps", type=int, default=15)
    parser_threads.add_argument("--calls", type=int, default=20000,
                                help="calls per sample (few calls, many reps: the minimum and "
                                     "p10 are a busy machine's best case)")
    args = parser.parse_args()
    if args.command == "cells":
        cells()
    elif args.command == "summary":
        summary(args.path)
    elif args.command == "so":
        so(args.old, args.reps, args.threads, args.cells, args.calls)
    elif args.command == "packed":
        packed(args.reps)
    else:
        int8_threads(args.cell, args.reps, args.calls)


if __name__ == "__main__":
    sys.exit(main())
