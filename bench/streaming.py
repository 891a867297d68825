"""Streaming latency at batch 1: one time step per call, the whole call timed, Python included.

For each cell and hidden size (input size = hidden, one layer), in one process, interleaved
(rotating which goes first), medians over repetitions, at 1 and 2 threads:

- ``torch.nn``: the torch.nn layer called on a length-1 sequence, state fed back;
- ``ORT``: the same weights exported with ``torch.onnx``, one ``InferenceSession.run`` per step
  (outputs checked equal to torch's first; bench/onnx_peer.py);
- ``step()``: ``rnnkit.nn`` layer's ``step(x_t, state)``, state fed back;
- ``streamer()``: ``layer.streamer(1)``, called as ``streamer(x_t)``;
- ``streamer() int8``: the same for ``rnnkit.nn.quantize_int8(layer).streamer(1)``.

RNN H=16 (arithmetic negligible) shows the call floor.

Each timed call is a direct ``f(x)`` from the timing loop (the peers need a small closure to
feed their state back); ``loop floor`` is that loop calling a no-op, i.e. the part of every
figure that is the harness. All calls run under one ``torch.no_grad()``.

    python bench/streaming.py                 # writes bench/results/streaming_wall.{json,md}
    python bench/streaming.py --threads 1 --cells LSTM:256 --reps 9
    python bench/streaming.py --threads 1 --clock cpu  # busy machine: streaming_cpu.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from rnnkit import engine
from rnnkit import nn as rnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_peer

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_CELLS = "RNN:16,RNN:64,RNN:128,GRU:64,GRU:128,LSTM:64,LSTM:256"
# Targets of issue 14 (whole call, µs, batch 1).
TARGET_US = {"RNN": {64: 2.0, 128: 2.0}, "GRU": {64: 2.0, 128: 2.0}, "LSTM": {256: 4.0}}
MIN_SAMPLE_SECONDS = 0.03
COLUMNS = ("torch", "ort", "step", "streamer", "streamer_int8")


def _noop(x):
    return x


# Wall clock by default; --clock cpu: the calling thread's CPU time (1 thread only, so all the
# work runs on that thread), robust to other processes on a busy machine.
clock = time.perf_counter


# Idle seconds before each timed sample of a multi-threaded row (--settle): ORT's and torch's
# thread pools keep spinning after their last call and, at 2 threads on 2 cores, take a core
# from the next implementation sampled (bench/layers.py measures the same way). One-thread
# rows have no pool to wait for, and a pause there only cools the core (GRU H=64 int8 1.47 ->
# 1.87 us in one A/B), so they run back to back.
SETTLE_SECONDS = 0.2
settle_seconds = SETTLE_SECONDS


def sample(fn, arg, calls: int, settle: bool = False) -> float:
    """Seconds per ``fn(arg)`` over ``calls`` calls (after the settle pause and one untimed
    call when ``settle``)."""
    if settle and settle_seconds:
        time.sleep(settle_seconds)
        fn(arg)
    start = clock()
    for _ in range(calls):
        fn(arg)
    return (clock() - start) / calls


def interleaved(candidates: dict, reps: int, settle: bool = False) -> dict[str, list[float]]:
    """Seconds per call of each ``name -> (fn, arg)``, sampled in turn, rotating the order."""
    calls = {}
    for name, (fn, arg) in candidates.items():
        fn(arg)
        once = max(sample(fn, arg, 20), 1e-7)
        calls[name] = max(20, int(MIN_SAMPLE_SECONDS / once))
    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    for _ in range(reps):
        for name in order:
            fn, arg = candidates[name]
            times[name].append(sample(fn, arg, calls[name], settle))
        order = order[1:] + order[:1]
    return times


def candidates(mode: str, hidden: int, ort: bool) -> dict:
    """``name -> (callable, argument)`` for every column this build can run."""
    torch.manual_seed(0)
    reference = getattr(torch.nn, mode)(hidden, hidden).eval()
    ours = getattr(rnn, mode)(hidden, hidden, backend="native").eval()
    ours.load_state_dict(reference.state_dict())
    x_seq = torch.randn(1, 1, hidden)
    x = x_seq[0].clone()
    state = {"torch": None, "step": None}

    def torch_step(x_seq):
        _, state["torch"] = reference(x_seq, state["torch"])

    def rnnkit_step(x):
        _, state["step"] = ours.step(x, state["step"])

    found = {"torch": (torch_step, x_seq)}
    if ort:
        ort_step = onnx_peer.ort_step(reference)
        found["ort"] = (lambda _: ort_step(), None)
    found["step"] = (rnnkit_step, x)
    found["streamer"] = (ours.streamer(1), x)
    quantized = rnn.quantize_int8(ours)
    if hasattr(quantized, "streamer"):
        found["streamer_int8"] = (quantized.streamer(1), x)
    found["loop_floor"] = (_noop, x)
    return found


def bench_cell(mode: str, hidden: int, threads: int, reps: int, ort: bool) -> dict:
    torch.set_num_threads(threads)
    with torch.no_grad():
        times = interleaved(candidates(mode, hidden, ort), reps, settle=threads > 1)
    row = {"mode": mode, "hidden": hidden, "threads": threads}
    for name, values in times.items():
        row[f"{name}_us"] = 1e6 * statistics.median(values)
        row[f"{name}_us_min"] = 1e6 * min(values)
    target = TARGET_US.get(mode, {}).get(hidden)
    row["target_us"] = target
    best = min(row[f"{c}_us"] for c in ("streamer", "streamer_int8") if f"{c}_us" in row)
    row["met"] = None if target is None else best <= target
    return row


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        "# Streaming at batch 1: one step per call, whole call (µs per step, median)",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores, torch {meta['torch']}, ISA "
        f"{meta['isa']}, int8 kernels {meta['int8']}, thread backend {meta.get('backend', '?')}, "
        f"clock {meta['clock']}. Load average "
        f"before/after: {meta['load_before']} / {meta['load_after']}. Command: "
        f"`{meta['command']}`.",
        "",
        "| cell | H | threads | torch.nn one-step | ORT one-step | step() | streamer() fp32 "
        "| streamer() int8 | loop floor | target | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        cells = [f"{r[c + '_us']:.2f}" if c + "_us" in r else "-" for c in COLUMNS]
        target = "-" if r["target_us"] is None else f"<= {r['target_us']:g}"
        met = "-" if r["met"] is None else ("met" if r["met"] else "not met")
        lines.append(f"| {r['mode']} | {r['hidden']} | {r['threads']} | " + " | ".join(cells)
                     + f" | {r['loop_floor_us']:.2f} | {target} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=DEFAULT_CELLS,
                        help=f"comma-separated MODE:H (default {DEFAULT_CELLS})")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-ort", action="store_true", help="skip the ONNX Runtime column")
    parser.add_argument("--out", default=None,
                        help="stem of the files in bench/results (default streaming_<clock>; "
                             "bench/results/streaming.md is the written-up analysis)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall clock, or the calling thread's CPU time (needs --threads 1)")
    parser.add_argument("--backend", choices=("openmp", "pool"), default=None,
                        help="the engine's thread backend (default: the engine's own choice, "
                             "torch's OpenMP team when loaded)")
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS,
                        help="idle seconds before each timed sample of a multi-threaded row "
                             "(0: none)")
    args = parser.parse_args()
    global settle_seconds
    settle_seconds = args.settle
    if args.clock == "cpu":
        if args.threads != "1":
            raise SystemExit("--clock cpu: expected --threads 1 (other threads' work would be "
                             f"missed), got --threads {args.threads}")
        global clock
        clock = time.thread_time
    if not engine.available:
        raise SystemExit(f"native engine not available: {engine.import_error}")
    if args.backend:
        engine.set_thread_backend(args.backend)
    from rnnkit.engine import quantized

    meta = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "isa": engine.isa(), "int8": quantized.kernel(),
            "clock": args.clock, "settle_seconds": settle_seconds,
            "backend": engine.thread_backend(),
            "load_before": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "command": "python bench/streaming.py " + " ".join(sys.argv[1:])}
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    meta["cpu"] = names[0] if names else meta["cpu"]
    stem = args.out or f"streaming_{args.clock}"
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        for cell in args.cells.split(","):
            mode, hidden = cell.split(":")
            row = bench_cell(mode, int(hidden), threads, args.reps, not args.no_ort)
            rows.append(row)
            print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row.items() if not k.endswith("_min")), flush=True)
    meta["load_after"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (RESULTS / f"{stem}.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))


if __name__ == "__main__":
    main()
