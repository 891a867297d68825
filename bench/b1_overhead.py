"""Per-call overhead of a whole-sequence rnnkit.nn forward at small batches.

For RNN/GRU/LSTM at T=100, it times in one process, interleaved, on one torch thread by the
calling thread's CPU time (robust on a shared machine):

- ``call``: ``layer(x)`` under ``torch.no_grad()`` (backend ``native``);
- ``kernel``: the native recurrence alone, on a ready input projection and buffers;
- ``gemm``: the input projection ``x W_ih^T`` alone (torch's BLAS).

``overhead = call - kernel - gemm`` is what the Python layer, the engine's plan and the
allocations cost. ``--compare A B`` runs this script on two source trees (``A/rnnkit``,
``B/rnnkit``) in alternating child processes and reports medians per tree, for before/after
measurements of a change::

    python bench/b1_overhead.py                       # this checkout's src/
    python bench/b1_overhead.py --compare /tmp/before/src src --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

MODES = {"RNN": "RNN_TANH", "GRU": "GRU", "LSTM": "LSTM"}
MODE_IDS = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
SEQ_LEN = 100
clock = time.thread_time


def _per_call(fn, calls: int) -> float:
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def _kernel_only(native, mode: str, layer, x: torch.Tensor):
    """A callable running only the native forward of layer 0, buffers made once."""
    w_ih, w_hh = layer.weight_ih_l0.detach(), layer.weight_hh_l0.detach()
    b_ih, b_hh = layer.bias_ih_l0.detach(), layer.bias_hh_l0.detach()
    seq, batch, _ = x.shape
    hidden = w_hh.shape[1]
    xg = (x.reshape(seq * batch, -1) @ w_ih.t()).view(seq, batch, -1)
    if mode == "GRU":
        bias = torch.cat([b_ih[:2 * hidden] + b_hh[:2 * hidden], b_ih[2 * hidden:]])
        b_hn = b_hh[2 * hidden:].contiguous()
    else:
        bias, b_hn = b_ih + b_hh, None
    gated = mode in ("LSTM", "GRU")
    h0 = x.new_zeros(batch, hidden)
    buffers = dict(
        y=x.new_empty(seq, batch, hidden), h_n=x.new_empty(batch, hidden),
        c_n=x.new_empty(batch, hidden) if mode == "LSTM" else None,
        gates=x.new_empty(1, batch, xg.shape[2]), aux=x.new_empty(1, batch, hidden) if gated
        else None, m=None, work=x.new_empty(3 * batch * hidden))
    c0 = x.new_zeros(batch, hidden) if mode == "LSTM" else None
    pack = seq * batch > 2

    def run():
        native.forward(mode=MODE_IDS[mode], reverse=False, save=False, threads=1, pack=pack,
                       xg=xg, bias=bias, h0=h0, c0=c0, w_hh=w_hh, b_hn=b_hn, w_hr=None,
                       lengths=None, **buffers)
    return run


def measure(hiddens, batches, reps: int, calls: int) -> list[dict]:
    """Rows of µs per call (medians over ``reps`` interleaved samples)."""
    from rnnkit import nn as rnn
    from rnnkit.engine._loader import require_native

    torch.set_num_threads(1)
    native = require_native()
    rows = []
    with torch.no_grad():
        for cell, mode in MODES.items():
            for hidden in hiddens:
                for batch in batches:
                    torch.manual_seed(0)
                    layer = getattr(rnn, cell)(hidden, hidden, backend="native")
                    x = torch.randn(SEQ_LEN, batch, hidden)
                    w_ih = layer.weight_ih_l0.detach()
                    x2 = x.reshape(SEQ_LEN * batch, hidden)
                    fns = {"call": lambda layer=layer, x=x: layer(x),
                           "kernel": _kernel_only(native, mode, layer, x),
                           "gemm": lambda x2=x2, w=w_ih: x2 @ w.t()}
                    for fn in fns.values():
                        for _ in range(20):
                            fn()
                    samples = {name: [] for name in fns}
                    for _ in range(reps):
                        for name, fn in fns.items():
                            samples[name].append(_per_call(fn, calls))
                    row = {"cell": cell, "hidden": hidden, "batch": batch}
                    row.update({name: 1e6 * statistics.median(values)
                                for name, values in samples.items()})
                    row["overhead"] = row["call"] - row["kernel"] - row["gemm"]
                    rows.append(row)
    return rows


def compare(trees: list[str], rounds: int, argv: list[str]) -> dict:
    """Run ``measure`` in child processes, alternating the trees; medians per tree and row."""
    script = str(Path(__file__).resolve())
    results: dict[str, list[list[dict]]] = {tree: [] for tree in trees}
    for index in range(rounds):
        for tree in trees if index % 2 == 0 else trees[::-1]:
            out = subprocess.run([sys.executable, script, "--src", tree, "--json", *argv],
                                 check=True, capture_output=True, text=True).stdout
            results[tree].append(json.loads(out))
    summary = {}
    for tree, runs in results.items():
        rows = []
        for position, row in enumerate(runs[0]):
            merged = dict(row)
            for key in ("call", "kernel", "gemm", "overhead"):
                merged[key] = statistics.median(run[position][key] for run in runs)
            rows.append(merged)
        summary[tree] = rows
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"))
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hiddens", default="64,128,256")
    parser.add_argument("--batches", default="1")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    passed = ["--hiddens", args.hiddens, "--batches", args.batches, "--reps", str(args.reps),
              "--calls", str(args.calls)]
    if args.compare:
        summary = compare(list(args.compare), args.rounds, passed)
        before, after = (summary[tree] for tree in args.compare)
        print("| cell | H | B | call before | call after | overhead before | overhead after "
              "| kernel | gemm |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for old, new in zip(before, after, strict=True):
            print(f"| {old['cell']} | {old['hidden']} | {old['batch']} | {old['call']:.1f} "
                  f"| {new['call']:.1f} | {old['overhead']:.1f} | {new['overhead']:.1f} "
                  f"| {new['kernel']:.1f} | {new['gemm']:.1f} |")
        return
    sys.path.insert(0, args.src)
    rows = measure([int(h) for h in args.hiddens.split(",")],
                   [int(b) for b in args.batches.split(",")], args.reps, args.calls)
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        print(f"{row['cell']:4} H={row['hidden']:3} B={row['batch']:3}  call {row['call']:7.1f}"
              f"  kernel {row['kernel']:7.1f}  gemm {row['gemm']:6.1f}  overhead "
              f"{row['overhead']:6.1f} µs")


if __name__ == "__main__":
    main()
