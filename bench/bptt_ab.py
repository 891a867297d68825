"""A/B in one process: the BPTT kernel of another build of ``_native`` against this tree's.

The other build's extension is loaded under another package name; both run the backward of
the same saved forward (seq 128, batch 64, hidden 256, see e2e_scaling.py) at 1 and 2 threads,
rounds interleaved, medians of the wall clock and of the process's CPU time. Bits are checked
equal first (one thread of the other build against both thread counts of this one).

    cp src/rnnkit/engine/_native*.so /tmp/old_native.so   # before rebuilding
    python bench/bptt_ab.py /tmp/old_native.so LSTM
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_scaling as scaling

from rnnkit.engine import ops


def load_other(path: str):
    """The extension at ``path`` as module ``other_rnnkit._native``."""
    loader = importlib.machinery.ExtensionFileLoader("other_rnnkit._native", path)
    module = importlib.util.module_from_spec(
        importlib.util.spec_from_loader("other_rnnkit._native", loader))
    loader.exec_module(module)
    return module


def main() -> None:
    other, cell = load_other(sys.argv[1]), sys.argv[2]
    this = ops.require_native()
    t = scaling.layer_tensors(cell)
    batch, hidden = scaling.BATCH, scaling.HIDDEN
    zeros = torch.zeros(batch, hidden)
    dc_n = zeros if cell == "LSTM" else None
    plan = ops._Plan(cell, hidden, hidden, None, False, 1)
    xg = ops._input_projection(t["x"], t["w_ih"], None)
    bias, b_hn = ops._gate_bias(cell, t["x"], t["b_ih"], t["b_hh"], xg.shape[2], hidden)
    y, _, _, (gates, aux, _) = ops._run_forward(plan, xg, bias, t["h0"], t["c0"], t["w_hh"],
                                                b_hn, None, True)

    def backward(module, threads):
        torch.set_num_threads(threads)
        ops.require_native = lambda: module
        return ops._run_backward(ops._Plan(cell, hidden, hidden, None, False, threads), t["dy"],
                                 zeros, dc_n, y, t["h0"], t["c0"], t["w_hh"], None, gates, aux)

    reference = backward(other, 1)
    for threads in (1, 2):
        got = backward(this, threads)
        assert all(torch.equal(a, b) for a, b in zip(reference, got, strict=True)
                   if a is not None), f"bits differ at {threads} threads"
    print(f"{cell}: bits equal; load average {os.getloadavg()[0]:.2f}")
    builds = {"other": other, "this": this}
    for clock in (time.perf_counter, time.process_time):
        runs = {(name, n): [] for name in builds for n in (1, 2)}
        for r in range(15):
            names = list(builds) if r % 2 == 0 else list(builds)[::-1]
            for threads in (1, 2):
                for name in names:
                    start = clock()
                    backward(builds[name], threads)
                    runs[(name, threads)].append(clock() - start)
        ms = {key: statistics.median(v) * 1e3 for key, v in runs.items()}
        for n in (1, 2):
            old, new = ms[("other", n)], ms[("this", n)]
            print(f"{cell} {clock.__name__} {n} thread(s): other {old:.1f} ms, this {new:.1f} ms, "
                  f"other/this {old / new:.2f}x")
        print(f"{cell} {clock.__name__} 1t/2t: other {ms[('other', 1)] / ms[('other', 2)]:.2f}x, "
              f"this {ms[('this', 1)] / ms[('this', 2)]:.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
