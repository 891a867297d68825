"""Generated toy data (no package needed): the ``hello`` next-character toy and a sine wave."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._write import write_atomic, write_csv

HELLO_REPEATS = 200
SINE_STEPS, SINE_PERIOD, SINE_NOISE, SINE_SEED = 1000, 50, 0.05, 0
SINE_SPLITS = (800, 100, 100)


def hello_text(repeats: int = HELLO_REPEATS) -> str:
    """``"hello\\n"`` repeated: learn h->e, e->l, l->l or o (needs memory), o->newline."""
    return "hello\n" * repeats


def sine_wave(steps: int = SINE_STEPS, period: float = SINE_PERIOD, noise: float = SINE_NOISE,
              seed: int = SINE_SEED) -> np.ndarray:
    """``(steps,)`` float64 ``sin(2 pi t / period)`` plus seeded Gaussian noise of std ``noise``."""
    t = np.arange(steps)
    clean = np.sin(2 * math.pi * t / period)
    return clean + noise * np.random.default_rng(seed).standard_normal(steps)


def build_hello(out_dir: Path) -> dict[str, int]:
    """Write ``train.txt`` and ``valid.txt`` (the same toy text)."""
    text = hello_text()
    for split in ("train", "valid"):
        write_atomic(out_dir / f"{split}.txt", text)
    return {"train.txt": len(text), "valid.txt": len(text)}


def build_sine(out_dir: Path) -> dict[str, int]:
    """Write ``train/valid/test.csv`` (columns ``t,value``) cut in time order."""
    values = sine_wave()
    counts, start = {}, 0
    for split, size in zip(("train", "valid", "test"), SINE_SPLITS, strict=True):
        rows = ((t, f"{values[t]:.6f}") for t in range(start, start + size))
        counts[f"{split}.csv"] = write_csv(out_dir / f"{split}.csv", ("t", "value"), rows)
        start += size
    return counts
