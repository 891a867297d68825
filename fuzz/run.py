"""Coverage-guided fuzzing of one target with atheris (libFuzzer).

    python fuzz/run.py TARGET [--seconds N] [extra libFuzzer flags]

Seeds come from ``fuzz/corpus/TARGET/`` (the regression corpus, never written to); inputs the
fuzzer finds interesting go to ``fuzz/work/TARGET/`` and crashes to ``fuzz/crashes/``. Every
crash gets fixed and its input copied into ``fuzz/corpus/TARGET/``, which the normal test
suite replays (``tests/fuzz/test_corpus.py``). Each input gets 10 s and the process 2 GB:
a hang or unbounded memory is a crash too.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["rnnkit", "fuzz", "yaml"]):
    from fuzz.targets import TARGETS

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=int, default=60)
    args, extra = parser.parse_known_args()
    logging.disable(logging.CRITICAL)  # skip notices would flood the output
    work = ROOT / "fuzz" / "work" / args.target
    crashes = ROOT / "fuzz" / "crashes"
    work.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    seeds = ROOT / "fuzz" / "corpus" / args.target
    flags = [f"-max_total_time={args.seconds}", "-timeout=10", "-rss_limit_mb=2048",
             "-max_len=4096", "-print_final_stats=1",
             f"-artifact_prefix={crashes}/{args.target}-", *extra]
    atheris.Setup([sys.argv[0], *flags, str(work), str(seeds)], TARGETS[args.target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
