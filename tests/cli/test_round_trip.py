"""train → evaluate → generate/predict → export, per task family, on slices of bundled data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.cli.conftest import write
from tests.tasks.small_data import small_copy, small_text

QUICK = ["--set", "train.max_steps=3", "--set", "train.eval_every=3", "--no-progress"]
EVALUATE_KEYS = {
    "language_model": {"loss", "perplexity", "bpc", "oov_tokens", "oov_rate"},
    "classification": {"accuracy", "macro_f1"},
    "tagging": {"accuracy"},
    "seq2seq": {"exact_match", "bleu", "chrf"},
    "forecasting": {"mae", "rmse", "smape", "mase"},
    "conditional_generation": {"loss", "perplexity"},
}


def train(cli, config: Path, out: str, *extra: str) -> None:
    result = cli("train", config, "--out", out, *QUICK, *extra)
    assert result.exit_code == 0, result.output
    assert "Checkpoint: " in result.stdout and f"rnnkit evaluate {out}" in result.stdout
    assert re.search(r"^Peak memory: \d+ MB", result.stdout, re.M)
    assert (Path(out) / "config.yaml").is_file() and (Path(out) / "checkpoints" / "best").is_dir()


def evaluate_json(cli, run: str, data: Path, task: str) -> dict:
    result = cli("evaluate", run, "--data", data, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert EVALUATE_KEYS[task] <= set(metrics)
    assert all(isinstance(v, float) or (k == "oov_tokens" and isinstance(v, int))
               for k, v in metrics.items())
    return metrics


def export_checks(cli, run: str, fmt: str = "onnx", graphs: int = 1) -> list[float]:
    result = cli("export", run, "--format", fmt, "--out", f"{run}.{fmt}")
    assert result.exit_code == 0, result.output
    differences = [float(x) for x in re.findall(r"max abs difference (\S+)", result.stdout)]
    assert len(differences) == 2 * graphs and max(differences) < 1e-3
    assert len(re.findall(r"^  inputs of \S+: \w+", result.stdout, re.MULTILINE)) == graphs
    assert Path(f"{run}.{fmt}").stat().st_size > 0
    return differences


def test_language_model(cli, tmp_path):
    paths = small_text(tmp_path)
    config = write(tmp_path / "lm.yaml", f"task: language_model\ndata: {{train: {paths['train']}, "
                   f"valid: {paths['valid']}, seq_len: 16}}\nmodel: {{hidden_size: 16, "
                   "num_layers: 1, embedding_size: 8}\ntrain: {batch_size: 4}\n")
    train(cli, config, "lm")
    metrics = evaluate_json(cli, "lm", paths["valid"], "language_model")
    assert metrics["bpc"] == pytest.approx(metrics["loss"] / 0.6931471805599453)
    result = cli("generate", "lm", "--prime", "ROMEO:", "--length", "40", "--seed", "1")
    assert result.exit_code == 0 and result.stdout.startswith("ROMEO:")
    again = cli("generate", "lm", "--prime", "ROMEO:", "--length", "40", "--seed", "1")
    assert again.stdout == result.stdout  # seeded sampling is reproducible
    scored = cli("predict", "lm", input="To be, or not to be\n")
    assert json.loads(scored.stdout)["perplexity"] > 1
    export_checks(cli, "lm")
    export_checks(cli, "lm", "torchscript")


def test_classification(cli, tmp_path):
    paths = small_copy("names", tmp_path, {"train": 300, "valid": 60, "test": 60}, header=True)
    config = write(tmp_path / "names.yaml", "task: classification\ndata: {dataset: names, "
                   f"train: {paths['train']}, valid: {paths['valid']}, test: {paths['test']}, "
                   "tokenizer: char}\nmodel: {hidden_size: 16, embedding_size: 8}\n")
    train(cli, config, "cls")
    evaluate_json(cli, "cls", paths["test"], "classification")
    result = cli("predict", "cls", "--input", paths["test"], "--output", "out.csv")
    assert result.exit_code == 0, result.output
    header, *rows = Path("out.csv").read_text().splitlines()
    assert header.startswith("text,label,probability,p_")
    assert len(rows) == 60
    lines = cli("predict", "cls", input="nakamura\nschmidt\n").stdout.splitlines()
    first = json.loads(lines[0])
    assert first["text"] == "nakamura" and sum(first["probabilities"].values()) == pytest.approx(1)
    export_checks(cli, "cls")


def test_tagging(cli, tmp_path):
    paths = small_copy("brown_pos", tmp_path, {"train": 200, "valid": 40}, header=False)
    config = write(tmp_path / "pos.yaml", f"task: tagging\ndata: {{train: {paths['train']}, "
                   f"valid: {paths['valid']}}}\nmodel: {{hidden_size: 16, embedding_size: 8}}\n")
    train(cli, config, "pos")
    evaluate_json(cli, "pos", paths["valid"], "tagging")
    row = json.loads(cli("predict", "pos", input="The dog barked .\n").stdout)
    assert row["tokens"] == ["The", "dog", "barked", "."] and len(row["tags"]) == 4
    export_checks(cli, "pos")


def test_seq2seq(cli, tmp_path):
    paths = small_copy("dates", tmp_path, {"train": 200, "valid": 30}, header=False)
    config = write(tmp_path / "dates.yaml", f"task: seq2seq\ndata: {{train: {paths['train']}, "
                   f"valid: {paths['valid']}}}\nmodel: {{hidden_size: 16, embedding_size: 8, "
                   "attention: luong_general}\n")
    train(cli, config, "s2s")
    evaluate_json(cli, "s2s", paths["valid"], "seq2seq")
    row = json.loads(cli("predict", "s2s", input="24 gennaio 2035\n").stdout)
    assert row["source"] == "24 gennaio 2035" and isinstance(row["output"], str)
    export_checks(cli, "s2s", graphs=2)  # encoder + one decoder step
    assert Path("s2s.step.onnx").is_file()
    bahdanau = write(tmp_path / "b.yaml", config.read_text().replace("luong_general", "bahdanau"))
    train(cli, bahdanau, "s2s-b", "--set", "data.eval_limit=5", "--set", "model.cell=lstm")
    export_checks(cli, "s2s-b", graphs=2)


def test_forecasting(cli, tmp_path):
    config = write(tmp_path / "sine.yaml", "task: forecasting\ndata: {dataset: sine, "
                   "lookback: 20, horizon: 5, season: 50}\nmodel: {hidden_size: 8}\n")
    train(cli, config, "sine")
    test_file = Path("cache/samples/sine/test.csv")
    metrics = evaluate_json(cli, "sine", test_file, "forecasting")
    assert "naive_mase" in metrics and 0 <= metrics["coverage"] <= 1
    result = cli("predict", "sine", "--input", test_file, "--format", "csv")
    header, *rows = result.stdout.splitlines()
    assert header == "step,time,value,value_lower,value_upper" and len(rows) == 5
    # the file's own time column (t = 900..999) continues past its last row
    assert [r.split(",")[1] for r in rows] == ["1000", "1001", "1002", "1003", "1004"]
    assert all(float(r.split(",")[3]) <= float(r.split(",")[4]) for r in rows)
    export_checks(cli, "sine")


def test_conditional_generation(cli, tmp_path):
    paths = small_copy("names", tmp_path, {"train": 300, "valid": 60}, header=True)
    config = write(tmp_path / "gen.yaml", "task: conditional_generation\ndata: {dataset: names, "
                   f"train: {paths['train']}, valid: {paths['valid']}}}\n"
                   "model: {hidden_size: 16, embedding_size: 8}\n")
    train(cli, config, "gen")
    evaluate_json(cli, "gen", paths["valid"], "conditional_generation")
    result = cli("generate", "gen", "--condition", "italian", "--length", "12", "--count", "3",
                 "--seed", "0")
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 3
    wrong = cli("generate", "gen", "--condition", "italan")
    assert wrong.exit_code == 2 and "did you mean 'italian'?" in wrong.stderr
    export_checks(cli, "gen")


def test_generate_refused_for_a_classifier_run(cli, tmp_path):
    paths = small_copy("names", tmp_path, {"train": 100, "valid": 30}, header=True)
    config = write(tmp_path / "c.yaml", f"task: classification\ndata: {{dataset: names, train: "
                   f"{paths['train']}, valid: {paths['valid']}, tokenizer: char}}\n"
                   "model: {hidden_size: 8, embedding_size: 4}\n")
    train(cli, config, "c")
    result = cli("generate", "c")
    assert result.exit_code == 2 and "use `rnnkit predict`" in result.stderr


def test_a_per_series_forecasting_export_names_its_series_inputs(cli, tmp_path):
    rows = ["series_id,time,value"] + [f"{sid},{t},{size * (2 + (t % 7) / 7):.3f}"
                                       for sid, size in (("a", 1.0), ("b", 30.0))
                                       for t in range(80)]
    data = write(tmp_path / "panel.csv", "\n".join(rows) + "\n")
    config = write(tmp_path / "panel.yaml", f"task: forecasting\ndata: {{train: {data}, "
                   "time_column: time, lookback: 14, horizon: 7, season: 7, normalize: series}\n"
                   "model: {hidden_size: 8}\ntrain: {max_steps: 4}\n")
    train(cli, config, "panel")
    result = cli("export", "panel", "--format", "onnx", "--out", "panel.onnx")
    assert result.exit_code == 0, result.output
    assert "  inputs of panel.onnx: history, series_mean, series_std\n" in result.stdout
