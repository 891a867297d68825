"""Small-batch inference: the one-call route (``_native.infer``, input projected in the kernel
first) against the torch-GEMM route, and one thread against two, in one process.

``routes``: one torch thread, CPU time of the calling thread, T=100, input = hidden; both
routes on the same weights and input (outputs checked close first), 9 interleaved samples,
medians; prints old/new per cell (``engine.ops._projects_first`` and the figures in its
docstring).

``threads``: wall clock, the one-call route with the kernel on 1 and on 2 threads (torch at 2),
6 interleaved rounds, each sample after 0.2 s idle (the rule in
``engine.threads.MIN_WORK_PER_THREAD``)::

    python bench/project_first_ab.py routes --cells LSTM:64:1,GRU:64:1,GRU:128:1,LSTM:256:1
    python bench/project_first_ab.py threads --cells LSTM:64:1,LSTM:64:2,GRU:128:1
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from rnnkit.engine import ops
from rnnkit.engine._loader import require_native

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
MODES = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "RNN_TANH"}
SEQ_LEN = 100


def cells(text: str) -> list[tuple[str, int, int]]:
    return [(mode, int(hidden), int(batch))
            for mode, hidden, batch in (cell.split(":") for cell in text.split(","))]


def route_pair(mode: str, hidden: int, batch: int, threads: int | None = None):
    """``(torch-GEMM route, one-call route)`` on the same weights and input; ``threads``: the
    kernel's thread count (default: what ``engine.threads.choose_threads`` gives)."""
    torch.manual_seed(0)
    width = GATES[mode] * hidden
    w_ih, w_hh = torch.randn(width, hidden) * 0.1, torch.randn(width, hidden) * 0.1
    b_ih, b_hh = torch.randn(width), torch.randn(width)
    x, h0 = torch.randn(SEQ_LEN, batch, hidden), torch.zeros(batch, hidden)
    c0 = torch.zeros(batch, hidden) if mode == "LSTM" else None
    plan = ops.inference_plan(MODES[mode], hidden, hidden, batch, False)
    if threads is not None:
        plan = dataclasses.replace(plan, threads=threads)
    native = require_native()

    def torch_gemm_route():
        xg = ops._input_projection(x, w_ih, None)
        bias, b_hn = ops._gate_bias(plan.mode, x, b_ih, b_hh, width, hidden)
        return ops._run_forward(plan, xg, bias, h0, c0, w_hh, b_hn, None, False)

    def one_call_route():
        return native.infer(mode=ops.checks.MODE_IDS[plan.mode], reverse=False,
                            threads=plan.threads, x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh,
                            b_ih=b_ih, b_hh=b_hh, w_hr=None)
    return torch_gemm_route, one_call_route


def routes(spec: str) -> None:
    torch.set_num_threads(1)
    for mode, hidden, batch in cells(spec):
        old_route, new_route = route_pair(mode, hidden, batch)
        torch.testing.assert_close(new_route()[0], old_route()[0], rtol=1e-4, atol=1e-5)
        old, new = _interleaved([old_route, new_route], time.thread_time, 0.0)
        print(f"{mode}{hidden} B={batch}: torch-GEMM route {old:.1f} us, one call {new:.1f} us,"
              f" old/new {old / new:.2f}", flush=True)


def threads(spec: str) -> None:
    torch.set_num_threads(2)
    for mode, hidden, batch in cells(spec):
        one_thread = route_pair(mode, hidden, batch, threads=1)[1]
        two_threads = route_pair(mode, hidden, batch, threads=2)[1]
        one, two = _interleaved([one_thread, two_threads], time.perf_counter, 0.2, rounds=6)
        print(f"{mode}{hidden} B={batch}: 1 thread {one:.1f} us, 2 threads {two:.1f} us, "
              f"2 threads' speedup {one / two:.2f}", flush=True)


def _interleaved(functions, clock, settle: float, rounds: int = 9) -> list[float]:
    """Median µs per call of each function over ``rounds`` samples, the order flipped each
    round; each sample after ``settle`` seconds idle and one untimed call."""
    for function in functions:
        function()
    start = clock()
    functions[0]()
    calls = max(3, int(0.05 / max(clock() - start, 1e-6)))
    samples = [[] for _ in functions]
    for round_index in range(rounds):
        order = range(len(functions)) if round_index % 2 == 0 else reversed(range(len(functions)))
        for index in order:
            if settle:
                time.sleep(settle)
            functions[index]()
            start = clock()
            for _ in range(calls):
                functions[index]()
            samples[index].append((clock() - start) / calls * 1e6)
    return [statistics.median(times) for times in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["routes", "threads"])
    parser.add_argument("--cells", default="LSTM:64:1,GRU:64:1,RNN:64:1,GRU:128:1,LSTM:128:1,"
                        "LSTM:256:1,GRU:256:1")
    args = parser.parse_args()
    (routes if args.mode == "routes" else threads)(args.cells)


if __name__ == "__main__":
    main()
