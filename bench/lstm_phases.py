"""Where an LSTM inference call goes: the phases of ``rnnkit.nn.LSTM(...)(x)`` (no grad,
seq 100, input = hidden) timed apart in one process, interleaved, at 1 and 2 threads, with
ONNX Runtime's whole call beside them and each phase's GFLOP/s against a large torch.mm
measured in the same process.

Phases: the input projection (``x W_ih^T`` for all steps, torch's GEMM), the summed bias,
the native recurrence (``ops._run_forward``: packing, per-step products, gate arithmetic,
output copies; the split inside it comes from ``perf``, see bench/results/lstm_inference.md),
the kernel projecting the input itself (``in-kernel``: projection and recurrence in one call,
see ``ops._projects_in_kernel``), and the whole layer call (everything, including Python and
allocation; it takes the in-kernel route where ``_projects_in_kernel`` says so).

    python bench/lstm_phases.py                      # H/B = 256/128, 128/32, 512/32
    python bench/lstm_phases.py --points 256x32 --reps 21
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

from rnnkit import nn as rnn
from rnnkit.engine import ops

SEQ = 100


def timed(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def ceiling(threads: int, reps: int) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    return 2 * 2048**3 / min(timed(lambda: torch.mm(a, b), 3) for _ in range(reps)) / 1e9


def phases(hidden: int, batch: int, threads: int, reps: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    reference = torch.nn.LSTM(hidden, hidden)
    ours = rnn.LSTM(hidden, hidden, backend="native")
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(SEQ, batch, hidden)
    w_ih, w_hh = ours.weight_ih_l0, ours.weight_hh_l0
    b_ih, b_hh = ours.bias_ih_l0, ours.bias_hh_l0
    h0 = torch.zeros(batch, hidden)
    c0 = torch.zeros(batch, hidden)
    plan = ops.inference_plan("LSTM", hidden, hidden, batch, False)
    with torch.no_grad():
        xg = ops._input_projection(x, w_ih, None)
        bias, _ = ops._gate_bias("LSTM", x, b_ih, b_hh, xg.shape[-1], hidden)
        functions = {
            "projection": lambda: ops._input_projection(x, w_ih, None),
            "bias": lambda: ops._gate_bias("LSTM", x, b_ih, b_hh, xg.shape[-1], hidden),
            "recurrence": lambda: ops._run_forward(plan, xg, bias, h0, c0, w_hh, None, None,
                                                   False),
            # Projection and recurrence both in the kernel (what the layer runs when
            # ops._projects_in_kernel chooses it; timed at every point for comparison).
            "in-kernel": lambda: ops._run_forward(plan, None, bias, h0, c0, w_hh, None, None,
                                                  False, inputs=(x, w_ih.detach())),
            "layer": lambda: ours(x),
            "ort": onnx_peer.ort_sequence(reference, x),
        }
        for fn in functions.values():
            fn()
        calls = {name: max(1, int(0.05 / max(timed(fn, 1), 1e-6))) for name, fn in
                 functions.items()}
        runs = {name: [] for name in functions}
        order = list(functions)
        for _ in range(reps):
            for name in order:
                runs[name].append(timed(functions[name], calls[name]))
            order = order[1:] + order[:1]
    return {name: statistics.median(v) * 1e3 for name, v in runs.items()} | {
        "threads_used": plan.threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="256x128,128x32,512x32")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=11)
    args = parser.parse_args()
    for threads in map(int, args.threads.split(",")):
        peak = ceiling(threads, args.reps)
        print(f"{threads} thread(s): torch.mm 2048^3 {peak:.0f} GFLOP/s")
        for point in args.points.split(","):
            hidden, batch = map(int, point.split("x"))
            ms = phases(hidden, batch, threads, args.reps)
            half = 2 * SEQ * batch * hidden * 4 * hidden / 1e9  # GFLOP of each product
            rate = {"projection": half, "recurrence": half, "in-kernel": 2 * half,
                    "layer": 2 * half, "ort": 2 * half}
            cells = []
            for name in ("projection", "bias", "recurrence", "in-kernel", "layer", "ort"):
                text = f"{name} {ms[name]:7.2f} ms"
                if name in rate:
                    gflops = rate[name] / ms[name] * 1e3
                    text += f" ({gflops:5.0f} GF/s, {100 * gflops / peak:3.0f}%)"
                cells.append(text)
            print(f"  LSTM H={hidden:3d} B={batch:3d} (engine threads {ms['threads_used']}): "
                  + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
