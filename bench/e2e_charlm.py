"""End to end: training steps/s of a char-level language model, torch.nn vs rnnkit.

Model: embedding 64 -> 2-layer recurrent network (hidden 256) -> linear to the vocabulary,
cross-entropy on next-character prediction, Adam; sequences of 128, batch 64. The same model
is built with torch.nn.{LSTM,GRU,RNN} and with rnnkit.nn.{LSTM,GRU,RNN} (backend 'native'
by default) from identical initial weights, then trained in paired, interleaved rounds.

    python bench/e2e_charlm.py            # writes bench/results/e2e_charlm.{json,md}
    python bench/e2e_charlm.py --quick
    python bench/e2e_charlm.py --clock cpu   # one thread, CPU time (robust on a busy machine)
    python bench/e2e_charlm.py --backend auto --out e2e_charlm_amd  # another machine's run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit import engine
from rnnkit import nn as rnn

RESULTS = Path(__file__).resolve().parent / "results"
VOCAB = 96
EMBED, HIDDEN, LAYERS, SEQ, BATCH = 64, 256, 2, 128, 64
clock = time.perf_counter  # --clock cpu: the calling thread's CPU time, with one torch thread


class CharLM(torch.nn.Module):
    """Embedding -> recurrent stack -> vocabulary logits, input ``(batch, seq)`` token ids."""

    def __init__(self, recurrent: torch.nn.Module):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, EMBED)
        self.recurrent = recurrent
        self.head = torch.nn.Linear(HIDDEN, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.recurrent(self.embed(tokens))
        return self.head(hidden)


def build_pair(cell: str, backend: str) -> tuple[CharLM, CharLM]:
    torch.manual_seed(0)
    reference = CharLM(getattr(torch.nn, cell)(EMBED, HIDDEN, LAYERS, batch_first=True))
    ours = CharLM(getattr(rnn, cell)(EMBED, HIDDEN, LAYERS, batch_first=True, backend=backend))
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def trainer(model: CharLM, batches: list[torch.Tensor]):
    """A callable running one optimisation step on the next batch (cycling)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    state = {"i": 0, "loss": 0.0}

    def step():
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        optimizer.zero_grad(set_to_none=True)
        logits = model(batch[:, :-1])
        loss = loss_fn(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        state["loss"] = loss.item()

    return step, state


def timed(step, count: int) -> float:
    start = clock()
    for _ in range(count):
        step()
    return count / (clock() - start)


def bench_cell(cell: str, backend: str, rounds: int, steps: int) -> dict:
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=generator) for _ in range(4)]
    reference, ours = build_pair(cell, backend)
    ref_step, ref_state = trainer(reference, batches)
    our_step, our_state = trainer(ours, batches)
    ref_step()  # warm-up
    our_step()
    ref_rates, our_rates = [], []
    for r in range(rounds):
        pair = [(ref_step, ref_rates), (our_step, our_rates)]
        for step, rates in (pair if r % 2 == 0 else pair[::-1]):
            rates.append(timed(step, steps))
    ratios = [o / t for o, t in zip(our_rates, ref_rates, strict=True)]
    return {"cell": cell, "torch_steps_per_s": statistics.median(ref_rates),
            "rnnkit_steps_per_s": statistics.median(our_rates),
            "speedup": statistics.median(ratios), "speedup_min": min(ratios),
            "speedup_max": max(ratios), "torch_last_loss": ref_state["loss"],
            "rnnkit_last_loss": our_state["loss"]}


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = ["# Char-level LM training throughput: torch.nn vs rnnkit", "",
             f"embedding {EMBED}, {LAYERS} x {HIDDEN} recurrent, seq {SEQ}, batch {BATCH}, Adam; "
             f"{meta['threads']} threads, {meta['clock']}-clock timing, torch {meta['torch']}, "
             f"engine ISA `{meta['isa']}`, "
             f"backend `{meta['backend']}`, {meta['rounds']} paired interleaved rounds of "
             f"{meta['steps']} steps.", "",
             "| cell | torch.nn steps/s | rnnkit steps/s | speedup | min-max |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['torch_steps_per_s']:.2f} "
                     f"| {r['rnnkit_steps_per_s']:.2f} "
                     f"| **{r['speedup']:.2f}x** | {r['speedup_min']:.2f}-{r['speedup_max']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="native", choices=["native", "auto"])
    parser.add_argument("--cells", default="LSTM,GRU,RNN")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"])
    parser.add_argument("--out", default=None,
                        help="results file stem under bench/results (another machine's run)")
    args = parser.parse_args(argv)
    global clock
    if args.clock == "cpu":
        torch.set_num_threads(1)
        clock = time.thread_time
    if not engine.available():
        raise SystemExit(f"native engine not available: {engine.import_error}")
    steps = 2 if args.quick else 5
    meta = {"threads": torch.get_num_threads(), "torch": torch.__version__, "isa": engine.isa(),
            "backend": args.backend, "rounds": args.rounds, "steps": steps, "clock": args.clock}
    rows = []
    for cell in args.cells.split(","):
        row = bench_cell(cell, args.backend, args.rounds, steps)
        rows.append(row)
        print(f"{cell:4}  torch.nn {row['torch_steps_per_s']:6.2f} steps/s  rnnkit "
              f"{row['rnnkit_steps_per_s']:6.2f} steps/s  {row['speedup']:.2f}x "
              f"({row['speedup_min']:.2f}-{row['speedup_max']:.2f})", flush=True)
    stem = args.out or ("e2e_charlm_quick" if args.quick else "e2e_charlm") + (
        "_cpu1" if args.clock == "cpu" else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(meta, rows))
    print(f"wrote {RESULTS / stem}.json and .md")


if __name__ == "__main__":
    main()
