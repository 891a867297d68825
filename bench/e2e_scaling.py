"""Where a training step of one recurrent layer goes at 1 and at 2 threads.

One layer-direction of the char-LM's second layer (seq 128, batch 64, input 256, hidden 256)
is run part by part through ``rnnkit.engine.ops``: the input-projection GEMM, the native
forward recurrence, the native BPTT kernel, and the whole backward (BPTT plus the weight and
input gradient GEMMs). Thread counts alternate round by round in one process; each part's
median is reported with the wall clock and with the process's CPU time (all threads, spinning
included). On a quiet machine ``wall 1t / wall 2t`` is the part's speed-up from the second
core; on a busy one the CPU-time ratio still shows how much work the second thread adds.

    python bench/e2e_scaling.py                  # LSTM and GRU, 9 rounds
    python bench/e2e_scaling.py --cells GRU --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.engine import ops
from rnnkit.engine.checks import GATES
from rnnkit.engine.threads import choose_threads

SEQ, BATCH, INPUT, HIDDEN = 128, 64, 256, 256
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def layer_tensors(cell: str) -> dict:
    """Inputs, weights and an output gradient for one layer, seeded."""
    generator = torch.Generator().manual_seed(0)
    width = GATES[cell] * HIDDEN

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator) * scale

    return {"x": randn(SEQ, BATCH, INPUT), "h0": torch.zeros(BATCH, HIDDEN),
            "c0": torch.zeros(BATCH, HIDDEN) if cell == "LSTM" else None,
            "w_ih": randn(width, INPUT, scale=HIDDEN ** -0.5),
            "w_hh": randn(width, HIDDEN, scale=HIDDEN ** -0.5),
            "b_ih": randn(width, scale=0.1), "b_hh": randn(width, scale=0.1),
            "dy": randn(SEQ, BATCH, HIDDEN)}


def parts(cell: str, t: dict, threads: int, clock) -> dict:
    """Seconds of each part of one forward + backward at ``threads`` torch threads."""
    torch.set_num_threads(threads)
    plan = ops._Plan(cell, HIDDEN, HIDDEN, None, False, choose_threads(cell, BATCH, HIDDEN, HIDDEN))
    zeros = torch.zeros(BATCH, HIDDEN)
    dc_n = zeros if cell == "LSTM" else None
    out = {}
    start = clock()
    xg = ops._input_projection(t["x"], t["w_ih"], None)
    out["input projection GEMM"] = clock() - start
    bias, b_hn = ops._gate_bias(cell, t["x"], t["b_ih"], t["b_hh"], xg.shape[2], HIDDEN)
    start = clock()
    y, _, _, (gates, aux, m) = ops._run_forward(plan, xg, bias, t["h0"], t["c0"], t["w_hh"],
                                                b_hn, None, True)
    out["forward kernel"] = clock() - start
    start = clock()
    ops._run_backward(plan, t["dy"], zeros, dc_n, y, t["h0"], t["c0"], t["w_hh"], None, gates,
                      aux)
    out["BPTT kernel"] = clock() - start
    start = clock()
    ops.gradients(plan, t["x"], y, t["h0"], t["c0"], t["w_ih"], t["w_hh"], None, gates, aux, m,
                  t["dy"], zeros, dc_n)
    out["backward (BPTT + GEMMs)"] = clock() - start
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="LSTM,GRU")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    print(f"seq {SEQ}, batch {BATCH}, input {INPUT}, hidden {HIDDEN}; {args.rounds} interleaved "
          f"rounds, medians; load average {os.getloadavg()[0]:.2f} at start\n")
    print("| cell | part | clock | 1 thread ms | 2 threads ms | 1t / 2t |")
    print("|---|---|---|---:|---:|---:|")
    for cell in args.cells.split(","):
        tensors = layer_tensors(cell)
        for clock_name, clock in CLOCKS.items():
            runs = {1: [], 2: []}
            parts(cell, tensors, 1, clock)  # warm-up
            for r in range(args.rounds):
                for threads in ((1, 2) if r % 2 == 0 else (2, 1)):
                    runs[threads].append(parts(cell, tensors, threads, clock))
            for part in runs[1][0]:
                one = statistics.median(run[part] for run in runs[1]) * 1e3
                two = statistics.median(run[part] for run in runs[2]) * 1e3
                print(f"| {cell} | {part} | {clock_name} | {one:.1f} | {two:.1f} "
                      f"| {one / two:.2f}x |")
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
