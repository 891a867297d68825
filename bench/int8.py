"""int8 inference (rnnkit.nn.quantize_int8) against float32 and torch's quantize_dynamic.

Speed: ms per sequence (T=100, inference) of rnnkit float32, rnnkit int8, torch.nn float32 and
torch.ao.quantization.quantize_dynamic (int8 weights, LSTM/GRU only), for LSTM (also with
proj_size = H/4), GRU and RNN at H 256/512/1024 and batch 1 and 32. Timings are interleaved
in one process (rotating which goes first), medians over repetitions, ratios paired per
repetition; by default one torch thread and per-thread CPU time (robust on a shared machine).

Quality: a character LSTM LM trained briefly on the bundled Shakespeare sample (held-out
loss, nats/char) and a GRU name classifier on the bundled names sample (test accuracy),
each evaluated float32 and int8.

    python bench/int8.py              # speed and quality, writes bench/results/int8.{json,md}
    python bench/int8.py --speed-only --quick
    python bench/int8.py --render     # rewrite int8.md from int8.json
    python bench/int8.py --out int8_amd  # another machine's run beside the others
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import layers as timing

from rnnkit import engine
from rnnkit import nn as rnn
from rnnkit.engine import quantized

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = Path(__file__).resolve().parents[1] / "src/rnnkit/data/samples"  # bundled datasets
MODES = ("LSTM", "LSTM-proj", "GRU", "RNN")
IMPLEMENTATIONS = ("rnnkit_fp32", "rnnkit_int8", "torch_fp32", "torch_qdynamic")



# What the table's weak points come from, by int8 kernel (written from the runs in
# bench/results/README.md: the Xeon's for vnni, round nine's Zen 3 for avx2).
WHERE_INT8_GAINS_LEAST = {
    "vnni": "Where int8 gains least: at H=256 the float32 weights already fit in L2 (LSTM W_hh "
            "is 1 MB), so the float engine is not memory-bound there, and with proj_size the "
            "recurrent products are small and the int8 input projection (a 100 x 4H x H "
            "product, VNNI at about half its peak on the Xeon) is most of the time. At B=32 "
            "every implementation is bound by its products. On a shared machine the ratios "
            "move by up to ~30% between runs (LSTM H=256 B=1 measured 1.95x, 2.28x, 2.65x and "
            "1.98x in four runs on the Xeon).",
    "avx2": "Without VNNI the int8 dot products are no faster than float32's: the AVX2 kernel "
            "sign-extends the weights and multiplies pairs (vpmaddwd, exact), three "
            "instructions per 16 multiply-adds, where float32 does 8 per FMA at two FMAs a "
            "cycle. int8 then saves only the bytes read, which pays a little at batch 1 where "
            "the float32 weights come from beyond L2, and costs at B=32, where the products "
            "bound every implementation.",
}

def layers_for(mode: str, hidden: int):
    """The four implementations of one layer (input size == hidden) with equal weights."""
    proj = hidden // 4 if mode == "LSTM-proj" else 0
    kind = "LSTM" if mode == "LSTM-proj" else mode
    torch.manual_seed(0)
    options = {"proj_size": proj} if proj else {}
    reference = getattr(torch.nn, kind)(hidden, hidden, **options).eval()
    ours = getattr(rnn, kind)(hidden, hidden, **options).eval()
    ours.load_state_dict(reference.state_dict())
    int8 = rnn.quantize_int8(ours)
    peer = None
    if kind in ("LSTM", "GRU"):
        peer = torch.ao.quantization.quantize_dynamic(reference, {getattr(torch.nn, kind)},
                                                      dtype=torch.qint8)
    return {"rnnkit_fp32": ours, "rnnkit_int8": int8, "torch_fp32": reference,
            "torch_qdynamic": peer}


def bench_point(mode, hidden, batch, seq_len, reps) -> dict:
    modules = layers_for(mode, hidden)
    x = torch.randn(seq_len, batch, hidden)
    names = [name for name in IMPLEMENTATIONS if modules[name] is not None]

    def call(module):
        def run():
            with torch.no_grad():
                module(x)
        return run

    times = dict(zip(names, timing.interleaved([call(modules[n]) for n in names], reps),
                     strict=True))
    row = {"mode": mode, "hidden": hidden, "batch": batch, "seq_len": seq_len,
           "commit": git_commit()}
    for name in IMPLEMENTATIONS:
        row[f"{name}_ms"] = statistics.median(times[name]) * 1e3 if name in times else None
    for name in ("rnnkit_fp32", "torch_fp32", "torch_qdynamic"):
        if name in times:
            ratios = [a / b for a, b in zip(times[name], times["rnnkit_int8"], strict=True)]
            row[f"int8_vs_{name}"] = statistics.median(ratios)
            row[f"int8_vs_{name}_range"] = [min(ratios), max(ratios)]
        else:
            row[f"int8_vs_{name}"] = None
    return row


# ------------------------------------------------------------------------------ quality
class CharLM(nn.Module):
    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 64)
        self.rnn = rnn.LSTM(64, hidden, num_layers=2)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))
        return self.head(out)


class NameClassifier(nn.Module):
    def __init__(self, vocab: int, classes: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.rnn = rnn.GRU(32, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x, lengths):
        _, h = self.rnn(self.embed(x), lengths=lengths)
        return self.head(torch.cat([h[0], h[1]], dim=1))


def char_lm_quality(steps: int, hidden: int, seed: int = 0) -> dict:
    """Train a 2-layer char LSTM for ``steps`` Adam steps; held-out loss float vs int8."""
    root = SAMPLES / "shakespeare"
    train_text = (root / "train.txt").read_text()
    valid_text = (root / "valid.txt").read_text()
    chars = sorted(set(train_text) | set(valid_text))
    index = {c: i for i, c in enumerate(chars)}
    train = torch.tensor([index[c] for c in train_text])
    valid = torch.tensor([index[c] for c in valid_text])
    torch.manual_seed(seed)
    model = CharLM(len(chars), hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    seq_len, batch = 100, 32
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for step in range(steps):
        starts = torch.randint(0, len(train) - seq_len - 1, (batch,), generator=generator)
        window = torch.stack([train[s:s + seq_len + 1] for s in starts.tolist()], dim=1)
        logits = model(window[:-1])
        loss = loss_fn(logits.reshape(-1, len(chars)), window[1:].reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        if step % 100 == 0:
            print(f"char-LM step {step}: training loss {loss.item():.3f}", flush=True)
    model.eval()
    int8 = rnn.quantize_int8(model)
    # Held-out loss over non-overlapping 200-char windows of the validation play.
    width = 200
    count = (len(valid) - 1) // width
    inputs = valid[:count * width].view(count, width).t()
    targets = valid[1:count * width + 1].view(count, width).t()
    losses = {}
    with torch.no_grad():
        for name, m in (("fp32", model), ("int8", int8)):
            total = 0.0
            for start in range(0, count, 64):
                logits = m(inputs[:, start:start + 64])
                total += nn.functional.cross_entropy(
                    logits.reshape(-1, len(chars)), targets[:, start:start + 64].reshape(-1),
                    reduction="sum").item()
            losses[name] = total / (count * width)
    return {"task": f"char-LM (Shakespeare sample, 2x{hidden} LSTM, {steps} steps)",
            "metric": "held-out loss (nats/char)", "fp32": losses["fp32"],
            "int8": losses["int8"], "change": losses["int8"] - losses["fp32"],
            "eval_chars": count * width}


def read_names(path: Path):
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return [r["name"] for r in rows], [r["label"] for r in rows]


def names_quality(epochs: int, hidden: int, seed: int = 0) -> dict:
    """Train a bidirectional GRU name classifier; test accuracy float vs int8."""
    root = SAMPLES / "names"
    train_names, train_labels = read_names(root / "train.csv")
    test_names, test_labels = read_names(root / "test.csv")
    chars = sorted(set("".join(train_names + test_names)))
    classes = sorted(set(train_labels))
    char_index = {c: i + 1 for i, c in enumerate(chars)}  # 0 pads

    def encode(names, labels):
        longest = max(len(n) for n in names)
        x = torch.zeros(len(names), longest, dtype=torch.long)
        for row, name in enumerate(names):
            x[row, :len(name)] = torch.tensor([char_index[c] for c in name])
        lengths = torch.tensor([len(n) for n in names])
        y = torch.tensor([classes.index(label) for label in labels])
        return x, lengths, y

    x_train, len_train, y_train = encode(train_names, train_labels)
    x_test, len_test, y_test = encode(test_names, test_labels)
    torch.manual_seed(seed)
    model = NameClassifier(len(chars) + 1, len(classes), hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y_train), generator=generator)
        for start in range(0, len(order), 64):
            rows = order[start:start + 64]
            loss = nn.functional.cross_entropy(model(x_train[rows], len_train[rows]), y_train[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    int8 = rnn.quantize_int8(model)
    with torch.no_grad():
        fp32_pred = model(x_test, len_test).argmax(1)
        int8_pred = int8(x_test, len_test).argmax(1)
    fp32_acc = (fp32_pred == y_test).float().mean().item() * 100
    int8_acc = (int8_pred == y_test).float().mean().item() * 100
    return {"task": f"name classifier (names sample, 15 classes, biGRU {hidden}, {epochs} epochs)",
            "metric": "test accuracy (%)", "fp32": fp32_acc, "int8": int8_acc,
            "change": int8_acc - fp32_acc,
            "predictions_changed": int((fp32_pred != int8_pred).sum()),
            "test_size": len(y_test)}


# ------------------------------------------------------------------------------ report
def fmt(value, digits=2, suffix=""):
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def commits(rows: list[dict], meta: dict) -> list[tuple[str, str]]:
    """``(commit, which rows)`` pairs: the batch sizes measured at each commit."""
    batches: dict[str, set[int]] = {}
    for r in rows:
        batches.setdefault(r.get("commit", meta.get("commit", "?")), set()).add(r["batch"])
    return [(commit, "B=" + "/".join(str(b) for b in sorted(found)))
            for commit, found in batches.items()]


def markdown(meta: dict, rows: list[dict], quality: list[dict]) -> str:
    lines = [
        "# int8 inference (rnnkit.nn.quantize_int8)",
        "",
        f"{meta['cpu']}; int8 kernels: `{meta['int8_kernel']}` (engine ISA {meta['isa']}); "
        f"{meta['threads']} torch thread(s), {meta['clock']}-clock timing; load average "
        f"{meta['load_start']:.1f} at the start, {meta['load_end']:.1f} at the end; torch "
        f"{meta['torch']}; measured at commit "
        + ", ".join(f"{commit} ({label})" for commit, label in commits(rows, meta))
        + f". Inference, T={meta['seq_len']}, input size = H; ms per sequence "
        f"(median of {meta['reps']} interleaved repetitions); speedups are medians of per-"
        "repetition ratios (other / rnnkit int8; > 1: int8 faster). torch's quantize_dynamic has "
        "no RNN (tanh) module.",
        "",
        "| cell | H | B | rnnkit fp32 | rnnkit int8 | torch fp32 | torch qdynamic | "
        "int8 vs rnnkit fp32 | int8 vs torch fp32 | int8 vs torch qdynamic |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['hidden']} | {r['batch']} | {fmt(r['rnnkit_fp32_ms'])} | "
            f"{fmt(r['rnnkit_int8_ms'])} | {fmt(r['torch_fp32_ms'])} | "
            f"{fmt(r['torch_qdynamic_ms'])} | {fmt(r['int8_vs_rnnkit_fp32'], 2, 'x')} | "
            f"{fmt(r['int8_vs_torch_fp32'], 2, 'x')} | "
            f"{fmt(r['int8_vs_torch_qdynamic'], 2, 'x')} |")
    b1 = [r for r in rows if r["batch"] == 1 and r["hidden"] >= 256]
    if b1:
        worst = min(b1, key=lambda r: r["int8_vs_rnnkit_fp32"])
        met = "met" if worst["int8_vs_rnnkit_fp32"] >= 2 else "not met"
        lines += ["", f"Target (issue 14) >= 2x float32 at B=1, H >= 256: **{met}** (2x or "
                  f"more at {sum(r['int8_vs_rnnkit_fp32'] >= 2 for r in b1)} of {len(b1)} "
                  f"points; lowest {worst['int8_vs_rnnkit_fp32']:.2f}x, {worst['mode']} H="
                  f"{worst['hidden']}, against rnnkit's own float32 engine, the fastest float "
                  "baseline here). Against torch's quantize_dynamic the lowest B=1 ratio is "
                  f"{min(r['int8_vs_torch_qdynamic'] or 99 for r in b1):.2f}x."]
    lines += ["", WHERE_INT8_GAINS_LEAST.get(meta["int8_kernel"], WHERE_INT8_GAINS_LEAST["vnni"])]
    if quality:
        lines += ["", "## Quality cost", "",
                  "| task | metric | fp32 | int8 | change |", "|---|---|---:|---:|---:|"]
        for q in quality:
            lines.append(f"| {q['task']} | {q['metric']} | {q['fp32']:.4f} | {q['int8']:.4f} | "
                         f"{q['change']:+.4f} |")
        lines += ["", "Targets (issue 14): held-out loss change <= 0.01 nats/char, accuracy "
                  "change <= 0.5 points (in absolute value). Each model is trained once in float32 "
                  "(seed 0, one thread) and evaluated as trained and after quantize_int8."]
        if meta.get("quality_load"):
            lines[-1] += (" Load average during the quality run: "
                          f"{meta['quality_load'][0]:.1f}-{meta['quality_load'][1]:.1f}.")
    lines.append("")
    return "\n".join(lines)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=RESULTS.parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="H 256/512 only")
    parser.add_argument("--clock", default="cpu", choices=["wall", "cpu"])
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--lm-steps", type=int, default=800)
    parser.add_argument("--names-epochs", type=int, default=12)
    parser.add_argument("--lm-hidden", type=int, default=256)
    parser.add_argument("--names-hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32],
                        help="batch sizes to measure (with --speed-only, rows of other batch "
                             "sizes are kept from the previous results)")
    parser.add_argument("--render", action="store_true",
                        help="rewrite the .md from the saved .json (no measuring)")
    parser.add_argument("--out", default=None,
                        help="results file stem under bench/results (another machine's run)")
    args = parser.parse_args(argv)
    if args.render:
        stem = args.out or "int8"
        payload = json.loads((RESULTS / f"{stem}.json").read_text())
        (RESULTS / f"{stem}.md").write_text(markdown(payload["meta"], payload["speed"],
                                                  payload["quality"]))
        return
    torch.set_num_threads(1 if args.clock == "cpu" else torch.get_num_threads())
    if args.clock == "cpu":
        timing.clock = time.thread_time
    meta = {"cpu": timing.cpu_name(), "isa": engine.isa(), "int8_kernel": quantized.kernel(),
            "threads": torch.get_num_threads(), "clock": args.clock, "torch": torch.__version__,
            "seq_len": 100, "reps": args.reps, "load_start": os.getloadavg()[0],
            "commit": git_commit()}
    rows: list[dict] = []
    if not args.quality_only:
        hiddens = (256, 512) if args.quick else (256, 512, 1024)
        for mode in MODES:
            for hidden in hiddens:
                for batch in args.batch:
                    row = bench_point(mode, hidden, batch, 100, args.reps)
                    rows.append(row)
                    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                      for k, v in row.items() if "range" not in k}), flush=True)
    quality: list[dict] = []
    if not args.speed_only:
        quality.append(char_lm_quality(args.lm_steps, args.lm_hidden))
        print(quality[-1], flush=True)
        quality.append(names_quality(args.names_epochs, args.names_hidden))
        print(quality[-1], flush=True)
    meta["load_end"] = os.getloadavg()[0]
    stem = args.out or ("int8_quick" if args.quick else "int8")
    previous_path = RESULTS / f"{stem}.json"
    if (args.speed_only or args.quality_only) and previous_path.exists():
        # A partial run keeps the other part of the previous results (and says when each ran).
        previous = json.loads(previous_path.read_text())
        measured = {(r["mode"], r["hidden"], r["batch"]) for r in rows}
        kept = [r for r in previous.get("speed", [])
                if (r["mode"], r["hidden"], r["batch"]) not in measured]
        rows = sorted(kept + rows, key=lambda r: (MODES.index(r["mode"]), r["hidden"],
                                                   r["batch"]))
        for row in kept:  # rows from before commits were recorded per row
            row.setdefault("commit", previous["meta"].get("commit", "unknown"))
        if args.speed_only and "quality_load" in previous["meta"]:
            meta["quality_load"] = previous["meta"]["quality_load"]
        quality = quality or previous.get("quality", [])
        if args.quality_only:
            meta = {**previous["meta"], "quality_load": [meta["load_start"], meta["load_end"]]}
    payload = {"meta": meta, "speed": rows, "quality": quality}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(meta, rows, quality))
    print(f"wrote {RESULTS / stem}.{{json,md}}")


if __name__ == "__main__":
    main()
