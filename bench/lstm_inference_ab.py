"""A/B in one process: a whole LSTM layer call (input projection + recurrence) with another
build of ``_native`` and torch's projection (the old route) against this tree's build and
route, with ONNX Runtime's LSTM (and optionally torch.nn) timed in the same rounds.

Each point (hidden, batch; seq 100, input = hidden) calls ``rnnkit.nn.LSTM(..., backend=
'native')`` under ``torch.no_grad()`` (``--task inference``) or a forward + backward of the
summed output (``--task training``). The builds alternate within every round (order rotated
each round); medians of the wall clock per call, the median of the paired ratios old/new
(> 1: this tree faster) and ORT/new (> 1: this tree faster than ORT), and the minimum
over rounds (the least disturbed one on a shared machine); ``--clock cpu`` takes the
process's CPU time instead (robust to preemption at 1 thread). Outputs of the two builds
are checked close (1e-5) first.

    cp src/rnnkit/engine/_native*.so /tmp/old_native.so   # before rebuilding
    python bench/lstm_inference_ab.py /tmp/old_native.so
    python bench/lstm_inference_ab.py /tmp/old_native.so --task training --points 256x32
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import onnx_peer
from bptt_ab import load_other

from rnnkit import nn as rnn
from rnnkit.engine import ops

SEQ = 100
POINTS = "64x32,128x32,128x128,256x32,256x128,512x1,512x32,512x128"


def with_build(module, fused: bool, fn):
    """``fn`` run with ``module`` as the engine and the in-kernel projection on or off."""
    this = ops.require_native
    minimum = ops.FUSED_PROJECTION_MIN_BATCH

    def call():
        ops.require_native = lambda: module
        if not fused:
            ops.FUSED_PROJECTION_MIN_BATCH = 1 << 30
        try:
            return fn()
        finally:
            ops.require_native = this
            ops.FUSED_PROJECTION_MIN_BATCH = minimum
    return call


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def timed(fn, calls: int) -> float:
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def point(other, this, hidden: int, batch: int, task: str, rounds: int, peers: bool) -> dict:
    torch.manual_seed(hidden + batch)
    reference = torch.nn.LSTM(hidden, hidden)
    ours = rnn.LSTM(hidden, hidden, backend="native")
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(SEQ, batch, hidden)

    if task == "inference":
        def run():
            with torch.no_grad():
                return ours(x)[0]
    else:
        def run():
            ours.zero_grad()
            y = ours(x)[0]
            y.sum().backward()
            return y
    functions = {"old": with_build(other, False, run), "new": with_build(this, True, run)}
    if peers and task == "inference":
        functions["ort"] = onnx_peer.ort_sequence(reference, x)
    if peers:
        def torch_run():
            if task == "inference":
                with torch.no_grad():
                    return reference(x)
            reference.zero_grad()
            reference(x)[0].sum().backward()
        functions["torch"] = torch_run
    old_y, new_y = functions["old"](), functions["new"]()
    torch.testing.assert_close(new_y, old_y, rtol=1e-5, atol=1e-5)
    calls = max(1, int(0.05 / max(timed(functions["old"], 1), 1e-6)))
    runs = {name: [] for name in functions}
    order = list(functions)
    for _ in range(rounds):
        for name in order:
            runs[name].append(timed(functions[name], calls))
        order = order[1:] + order[:1]
    result = {name: statistics.median(v) * 1e3 for name, v in runs.items()}
    for name in runs:
        if name != "new":
            ratios = [a / b for a, b in zip(runs[name], runs["new"], strict=True)]
            result[f"{name}/new"] = statistics.median(ratios)
    result["min_old"], result["min_new"] = min(runs["old"]) * 1e3, min(runs["new"]) * 1e3
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="path of the other build's _native*.so")
    parser.add_argument("--points", default=POINTS, help="HxB,... (hidden x batch)")
    parser.add_argument("--task", choices=("inference", "training"), default="inference")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--no-peers", action="store_true", help="skip ORT and torch.nn")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="cpu: the process's CPU time (all threads, spinning included)")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    other, this = load_other(args.other), ops.require_native()
    print(f"| H | B | old ms | new ms | old/new | min old | min new | "
          f"{'ORT ms | ORT/new | ' if args.task == 'inference' and not args.no_peers else ''}"
          f"{'torch ms | torch/new |' if not args.no_peers else ''}")
    for spec in args.points.split(","):
        hidden, batch = map(int, spec.split("x"))
        r = point(other, this, hidden, batch, args.task, args.rounds, not args.no_peers)
        line = (f"| {hidden} | {batch} | {r['old']:.2f} | {r['new']:.2f} | "
                f"**{r['old/new']:.2f}x** | {r['min_old']:.2f} | {r['min_new']:.2f} |")
        if "ort" in r:
            line += f" {r['ort']:.2f} | **{r['ort/new']:.2f}x** |"
        if "torch" in r:
            line += f" {r['torch']:.2f} | {r['torch/new']:.2f}x |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
