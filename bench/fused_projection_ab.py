"""The input projection inside the forward kernel (per step, on the packed tile) against one
product over all steps first (``engine.gemm``: the tile or torch's BLAS, whichever route is on),
on the same layer and input, in one process; decides ``engine.ops._projects_in_kernel``.

``rnnkit.nn`` layers with ``backend='native'``, T=100, given as MODE:HIDDEN:BATCH:INPUT;
inference or training (forward + backward); 7 interleaved samples of two calls, wall clock,
medians. ``RNNKIT_GEMM`` picks the separate product's route::

    python bench/fused_projection_ab.py --task inference --cells LSTM:256:32:256,LSTM:512:32:512
    python bench/fused_projection_ab.py --task training --cells LSTM:512:32:512 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from rnnkit.engine import gemm, ops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemm_ab import layer_call

RULE = ops._projects_in_kernel


def never_in_kernel(plan, x, w_hh, source_rows) -> bool:
    return False


def always_in_kernel(plan, x, w_hh, source_rows) -> bool:
    """Every call the kernel can project itself (the layout allows it), whatever the sizes."""
    return not (plan.mode == "GRU" or plan.lengths is not None or plan.offsets is not None
                or source_rows is not None or x.dim() != 3)


def compare(cell: str, training: bool, samples: int) -> tuple[float, float]:
    call = layer_call(cell, training)
    routes = {"separate": never_in_kernel, "in_kernel": always_in_kernel}
    times = {name: [] for name in routes}
    try:
        for sample in range(samples):
            for name in (("separate", "in_kernel") if sample % 2 else ("in_kernel", "separate")):
                ops._projects_in_kernel = routes[name]
                call()
                start = time.perf_counter()
                call()
                call()
                times[name].append((time.perf_counter() - start) / 2)
    finally:
        ops._projects_in_kernel = RULE
    return statistics.median(times["separate"]), statistics.median(times["in_kernel"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="LSTM:256:32:256,LSTM:512:32:512,LSTM:512:128:512")
    parser.add_argument("--task", choices=("inference", "training"), default="inference")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"| cell (mode:H:B:I) | task | threads | separate product ({gemm.route()}) ms | "
          "in kernel ms | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for cell in args.cells.split(","):
        separate, in_kernel = compare(cell, args.task == "training", args.samples)
        print(f"| {cell} | {args.task} | {args.threads} | {separate * 1e3:.2f} | "
              f"{in_kernel * 1e3:.2f} | {separate / in_kernel:.2f} |", flush=True)


if __name__ == "__main__":
    main()
