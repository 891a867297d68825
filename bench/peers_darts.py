"""The Darts side of bench/forecast_peers.py; runs in the separate peer environment, never in
rnnkit's (see forecast_peers.py for how to build it). Reads the problem from an ``.npz`` that
forecast_peers.py wrote, trains one Darts LSTM within a wall-clock budget and writes its
rolling-origin forecasts over the test part to another ``.npz``.

    /tmp/peers/bin/python bench/peers_darts.py PROBLEM.npz OUT.npz --model rnn|block|block_revin \
        --budget SECONDS
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from darts import TimeSeries
from darts.dataprocessing.transformers import Scaler
from darts.models import BlockRNNModel, RNNModel
from darts.utils.likelihood_models import GaussianLikelihood
from pytorch_lightning.callbacks.early_stopping import EarlyStopping

SAMPLES = 200  # sample paths per forecast: the 5% and 95% quantiles make the 90% interval


def load(path: str) -> tuple[dict, list[np.ndarray], list[np.ndarray | None]]:
    """Settings, the full target series (train + valid + test) and their future covariates."""
    data = np.load(path)
    settings = json.loads(str(data["settings"]))
    targets = [data[f"target_{i}"] for i in range(settings["series"])]
    covariates = [data.get(f"covariates_{i}")
                  for i in range(settings["series"])]
    return settings, targets, covariates


def build(kind: str, settings: dict, work_dir: str, budget: float):
    """An LSTM like rnnkit's: same lookback, width, batch size, learning rate and patience;
    Gaussian likelihood; Lightning stops at the wall-clock budget or on validation loss."""
    stop = EarlyStopping("val_loss", patience=settings["patience"], mode="min")
    common = {"model": "LSTM", "hidden_dim": settings["hidden_size"],
              "input_chunk_length": settings["lookback"], "batch_size": settings["batch_size"],
              "n_epochs": 10_000, "optimizer_kwargs": {"lr": settings["lr"]},
              "likelihood": GaussianLikelihood(), "random_state": settings["seed"],
              "save_checkpoints": True, "force_reset": True, "work_dir": work_dir,
              "model_name": kind,
              "pl_trainer_kwargs": {"accelerator": "cpu", "max_time": {"seconds": budget},
                                    "callbacks": [stop], "enable_progress_bar": False,
                                    "logger": False, "enable_model_summary": False}}
    if kind == "rnn":  # Darts' RNN that takes future covariates (one step, fed back)
        return RNNModel(training_length=settings["lookback"] + settings["horizon"], **common)
    # block_revin: each input window normalised by its own mean and spread, and the output
    # mapped back (reversible instance normalisation, Kim et al. 2022).
    return BlockRNNModel(output_chunk_length=settings["horizon"],
                         use_reversible_instance_norm=kind == "block_revin", **common)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem")
    parser.add_argument("out")
    parser.add_argument("--model", choices=("rnn", "block", "block_revin"), required=True)
    parser.add_argument("--budget", type=float, required=True, help="training seconds")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as rnnkit's side: one core each, the machine is shared
    settings, targets, covariates = load(args.problem)
    n_train, n_valid = settings["train_steps"], settings["valid_steps"]
    horizon = settings["horizon"]
    full = [TimeSeries.from_values(t.astype(np.float32)) for t in targets]
    target_scaler = Scaler()  # one scaler per series, fitted on its training part
    target_scaler.fit([s[:n_train] for s in full])
    scaled = target_scaler.transform(full)
    train = [s[:n_train] for s in scaled]
    # Validation windows take their lookback from the end of training, as rnnkit's do.
    valid = [s[n_train - settings["lookback"]:n_train + n_valid] for s in scaled]
    covariate_kw, fit_kw = {}, {}
    if covariates[0] is not None:
        covs = [TimeSeries.from_values(c.astype(np.float32)) for c in covariates]
        cov_scaler = Scaler(global_fit=True)
        cov_scaler.fit([c[:n_train] for c in covs])
        covs = cov_scaler.transform(covs)
        name = "future_covariates" if args.model == "rnn" else "past_covariates"
        covariate_kw = {name: covs}
        fit_kw = {name: covs, f"val_{name}": covs}
    with tempfile.TemporaryDirectory() as work_dir:
        model = build(args.model, settings, work_dir, args.budget)
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(train, val_series=valid, verbose=False, **fit_kw)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        epochs = model.epochs_trained
        model = type(model).load_from_checkpoint(args.model, work_dir=work_dir, best=True)
    first = n_train + n_valid
    forecasts = model.historical_forecasts(
        scaled, start=first, forecast_horizon=horizon, stride=1, retrain=False,
        last_points_only=False, num_samples=SAMPLES, verbose=False, **covariate_kw)
    out: dict[str, np.ndarray] = {}
    for index, per_origin in enumerate(forecasts):
        paths = np.stack([target_scaler.inverse_transform(f, series_idx=index)
                          .all_values()[:, 0, :] for f in per_origin])  # (origins, h, samples)
        out[f"mean_{index}"] = paths.mean(axis=-1)
        out[f"lower_{index}"] = np.quantile(paths, 0.05, axis=-1)
        out[f"upper_{index}"] = np.quantile(paths, 0.95, axis=-1)
        out[f"origin_{index}"] = np.asarray([int(f.start_time()) - first for f in per_origin])
    np.savez(args.out, seconds=seconds, cpu_seconds=cpu, epochs=epochs, **out)


if __name__ == "__main__":
    main()
