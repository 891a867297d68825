"""NER benchmark (not in CI): entity F1 on the held-out WNUT-16 test split for the tagger with
and without a CRF and char-CNN word features, over several seeds, and the CRF's training speed
cost. Writes ``bench/results/ner.md`` and ``ner.json``.

    PYTHONPATH=src python bench/ner.py --minutes 1.5 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from rnnkit import tasks
from rnnkit.data.datasets import prepare
from rnnkit.train.optim import build_optimizer

RESULTS = Path(__file__).parent / "results"
BASE = {
    "task": "tagging",
    "data": {"dataset": "wnut16", "full": True, "lowercase": True},
    "model": {"cell": "lstm", "hidden_size": 100, "embedding_size": 50, "bidirectional": True,
              "dropout": 0.5},
    "train": {"batch_size": 32, "lr": 1e-2, "max_epochs": 40, "patience": 4,
              "progress": False},
}
VARIANTS = {
    "softmax": {},
    "crf": {"crf": True},
    "char-cnn": {"char_features": "cnn"},
    "crf + char-cnn": {"crf": True, "char_features": "cnn"},
}


def config_for(variant: dict, seed: int, minutes: float, cache_dir: str | None, out: Path):
    raw = json.loads(json.dumps(BASE))
    raw["data"]["cache_dir"] = cache_dir
    raw["model"].update(variant)
    raw["train"].update(seed=seed, max_time=minutes)
    path = out / "config.json"
    path.write_text(json.dumps(raw))
    return tasks.load_config(path, [])


def crf_speed(cache_dir: str | None, out: Path, steps: int = 20) -> dict[str, float]:
    """Training steps/s of the same batches with and without the CRF, alternating so that load
    on the machine hits both alike."""
    from rnnkit.tasks.registry import TASKS

    timings: dict[str, list[float]] = {"softmax": [], "crf": []}
    models = {}
    for name, variant in (("softmax", {}), ("crf", {"crf": True})):
        config = config_for(variant, 0, 1.0, cache_dir, out)
        train_path = prepare("wnut16", cache_dir, progress=False).paths["train"]
        task = TASKS["tagging"].fit(config, train_path)
        torch.manual_seed(0)
        model = task.build_model()
        batches = list(task.train_source(task.read(train_path), 0).iter_epoch(0))[:steps]
        models[name] = (model, build_optimizer(model, config.train.trainer_config()), batches)
    for _ in range(2):
        for name, (model, optimizer, batches) in models.items():
            model.train()
            started = time.perf_counter()
            for batch in batches:
                optimizer.zero_grad()
                model.loss(batch).backward()
                optimizer.step()
            timings[name].append(len(batches) / (time.perf_counter() - started))
    return {name: max(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.5, help="training budget per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-ner"))
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    prepare("wnut16", args.cache_dir, progress=False)
    speed = crf_speed(args.cache_dir, args.out)
    print(f"steps/s: {speed}", flush=True)
    runs = []
    for name, variant in VARIANTS.items():
        for seed in args.seeds:
            config = config_for(variant, seed, args.minutes, args.cache_dir, args.out)
            started = time.monotonic()
            outcome = tasks.train(config, args.out / f"{name.replace(' + ', '_')}-{seed}",
                                  overwrite=True)
            test = outcome.test_metrics or {}
            runs.append({"variant": name, "seed": seed, "steps": outcome.fit.global_step,
                         "minutes": (time.monotonic() - started) / 60,
                         **{k: test.get(k) for k in ("f1", "precision", "recall", "macro_f1",
                                                     "accuracy")}})
            print(runs[-1], flush=True)
            write(runs, speed, args)


def write(runs: list[dict], speed: dict[str, float], args) -> None:
    (RESULTS / "ner.json").write_text(json.dumps({"speed": speed, "runs": runs}, indent=2))
    lines = ["# NER benchmark (WNUT-16)", "",
             f"`PYTHONPATH=src python bench/ner.py --minutes {args.minutes:g} --seeds "
             f"{' '.join(map(str, args.seeds))}` on {torch.get_num_threads()} threads, torch "
             f"{torch.__version__}. Full wnut16 set (`rnnkit datasets prepare wnut16`: 1,916 "
             "train / 239 valid / 239 test tweets, seeded split); BiLSTM 100 units per "
             "direction, 50-dim word embeddings learned from scratch (no pretrained vectors), "
             "dropout 0.5, batch 32, lr 1e-2; early stopping on validation entity F1; scores "
             "are conlleval entity-level micro scores on the test split with the best "
             "validation checkpoint.", "",
             "| model | seeds | test F1 mean ± sd | per seed | precision | recall | steps |",
             "|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        rows = [r for r in runs if r["variant"] == name]
        if not rows:
            continue
        f1 = [r["f1"] for r in rows]
        spread = statistics.stdev(f1) if len(f1) > 1 else 0.0
        lines.append(
            f"| {name} | {len(rows)} | {statistics.mean(f1):.3f} ± {spread:.3f} | "
            f"{', '.join(f'{v:.3f}' for v in f1)} | "
            f"{statistics.mean(r['precision'] for r in rows):.3f} | "
            f"{statistics.mean(r['recall'] for r in rows):.3f} | "
            f"{', '.join(str(r['steps']) for r in rows)} |")
    cost = speed["softmax"] / speed["crf"]
    lines += ["", "## CRF speed cost", "",
              f"Training steps/s on the same 20 batches (batch 32), best of 2 alternating "
              f"passes: softmax {speed['softmax']:.1f}, CRF {speed['crf']:.1f} "
              f"({cost:.2f}x the time per step).", "",
              f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(shared machine; step counts vary with load).", ""]
    (RESULTS / "ner.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
