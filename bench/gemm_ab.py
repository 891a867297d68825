"""The products around the recurrence: torch's BLAS against the engine's tile (``_native.gemm``).

The shapes of a layer's input projection (``x W_ih^T``), input gradient (``dG W_ih``) and
weight gradients (``dG^T x``, a transposed view read in place), for a T=100 sequence at batch
32 and the char-LM's (2x256 LSTM, batch 64, 128 steps), float32. Outputs checked close first;
then both in one process, interleaved, 7 samples, medians: CPU time of the calling thread at
1 thread, wall clock at more. Decides ``rnnkit.engine.gemm``'s route::

    python bench/gemm_ab.py --threads 1,2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from rnnkit import engine
from rnnkit import nn as rnn
from rnnkit.engine import gemm
from rnnkit.engine._loader import require_native

ROWS = 3200  # T * B


def cases() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``name -> (a, b)`` for ``a @ b``."""
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=generator)

    found = {}
    for hidden in (64, 256, 512):
        gates = 4 * hidden
        found[f"projection H={hidden} ({ROWS}x{hidden} @ {hidden}x{gates})"] = (
            rand(ROWS, hidden), rand(gates, hidden).t())
        found[f"input grad H={hidden} ({ROWS}x{gates} @ {gates}x{hidden})"] = (
            rand(ROWS, gates), rand(gates, hidden))
        found[f"weight grad H={hidden} ({gates}x{ROWS} @ {ROWS}x{hidden})"] = (
            rand(ROWS, gates).t(), rand(ROWS, hidden))
    found["char-LM weight grad (1024x8192 @ 8192x256)"] = (rand(8192, 1024).t(), rand(8192, 256))
    return found


def timed(fn, clock, repeats: int = 2) -> float:
    start = clock()
    for _ in range(repeats):
        fn()
    return (clock() - start) / repeats


def compare(a, b, threads: int, samples: int) -> tuple[float, float]:
    native = require_native()
    torch_product = lambda: a @ b  # noqa: E731
    tile_product = lambda: native.gemm(a=a, b=b, threads=threads)  # noqa: E731
    torch.testing.assert_close(tile_product(), torch_product(), rtol=1e-4, atol=1e-3)
    clock = time.thread_time if threads == 1 else time.perf_counter
    times = {"torch": [], "tile": []}
    for sample in range(samples):
        order = [("torch", torch_product), ("tile", tile_product)]
        for name, fn in order if sample % 2 else order[::-1]:
            times[name].append(timed(fn, clock))
    return statistics.median(times["torch"]), statistics.median(times["tile"])


LAYER_CELLS = ("LSTM:256:32", "LSTM:512:32", "LSTM:256:128", "GRU:256:32", "GRU:512:32",
               "RNN:512:32")


def layer_call(cell: str, training: bool):
    """A callable running one ``rnnkit.nn`` layer call (with backward when ``training``), T=100;
    ``cell`` is MODE:HIDDEN:BATCH[:INPUT] (input = hidden when left out)."""
    mode, hidden, batch, *inputs = cell.split(":")
    torch.manual_seed(0)
    input_size = int(inputs[0]) if inputs else int(hidden)
    layer = getattr(rnn, mode)(input_size, int(hidden), backend="native")
    x = torch.randn(100, int(batch), input_size, requires_grad=training)

    def run():
        if training:
            layer(x)[0].pow(2).sum().backward()
        else:
            with torch.no_grad():
                layer(x)
    return run


def with_route(route: str, fn):
    def run():
        os.environ[gemm.ROUTE_ENV] = route
        fn()
    return run


def compare_layers(threads: int, samples: int) -> None:
    clock = time.thread_time if threads == 1 else time.perf_counter
    print("| layer (mode:H:B) | task | threads | torch products ms | tile products ms | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for cell in LAYER_CELLS:
        for training in (False, True):
            call = layer_call(cell, training)
            routes = {"torch": with_route("torch", call), "native": with_route("native", call)}
            for fn in routes.values():
                fn()
            times = {name: [] for name in routes}
            for sample in range(samples):
                for name in (("torch", "native") if sample % 2 else ("native", "torch")):
                    times[name].append(timed(routes[name], clock))
            t, n = statistics.median(times["torch"]), statistics.median(times["native"])
            task = "training" if training else "inference"
            print(f"| {cell} | {task} | {threads} | {t * 1e3:.2f} | {n * 1e3:.2f} | "
                  f"{t / n:.2f} |", flush=True)
    os.environ.pop(gemm.ROUTE_ENV, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--layers", action="store_true",
                        help="whole layers with RNNKIT_GEMM=torch against native")
    args = parser.parse_args()
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    print(f"# {names[0] if names else platform.machine()}, vendor "
          f"{require_native().cpu_vendor()}, ISA {engine.isa()}, torch {torch.__version__}, "
          f"MKL {torch.backends.mkl.is_available()}")
    if args.layers:
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            compare_layers(threads, args.samples)
        return
    print("| product | threads | torch ms (GFLOP/s) | tile ms (GFLOP/s) | torch / tile |")
    print("|---|---:|---:|---:|---:|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for name, (a, b) in cases().items():
            flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
            torch_s, tile_s = compare(a, b, threads, args.samples)
            print(f"| {name} | {threads} | {torch_s * 1e3:.2f} ({flops / torch_s / 1e9:.0f}) | "
                  f"{tile_s * 1e3:.2f} ({flops / tile_s / 1e9:.0f}) | {torch_s / tile_s:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
