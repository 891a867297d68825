"""A seq2seq run with data.tokenizer: bpe trains, stores its subword model as JSON, predicts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import write
from tests.tasks.small_data import small_copy

from rnnkit.data import SubwordTokenizer
from rnnkit.train import read_metadata

QUICK = ["--set", "train.max_steps=3", "--set", "train.eval_every=3", "--no-progress"]


def test_bpe_run_trains_saves_json_and_predicts(cli, tmp_path):
    paths = small_copy("dates", tmp_path, {"train": 200, "valid": 30}, header=False)
    config = write(tmp_path / "dates.yaml", f"task: seq2seq\ndata: {{train: {paths['train']}, "
                   f"valid: {paths['valid']}, tokenizer: bpe, vocab_size: 120}}\n"
                   "model: {hidden_size: 16, embedding_size: 8}\n")
    result = cli("train", config, "--out", "bpe", *QUICK)
    assert result.exit_code == 0, result.output
    metadata = read_metadata(Path("bpe/checkpoints/best"))  # JSON all the way: no pickle
    artifacts = metadata["artifacts"]
    stored = artifacts["subword_tokenizer"]
    assert stored["model"]["type"] == "BPE" and artifacts["tokenizer"] == "bpe"
    model = SubwordTokenizer.from_json(json.dumps(stored), "bpe")
    assert len(stored["model"]["vocab"]) <= 120
    # Learnt from the training file only: its sources' words are whole pieces.
    first_source = Path(paths["train"]).read_text().splitlines()[0].split("\t")[0]
    assert model.decode(model.encode(first_source)) == " ".join(first_source.split())
    assert set(artifacts["source_vocab"]["tokens"]) <= set(stored["model"]["vocab"]) | {
        *artifacts["source_vocab"]["specials"]}

    predicted = cli("predict", "bpe", input="24 gennaio 2035\n")
    assert predicted.exit_code == 0, predicted.output
    row = json.loads(predicted.stdout)
    assert row["source"] == "24 gennaio 2035" and isinstance(row["output"], str)
    evaluated = cli("evaluate", "bpe", "--data", paths["valid"], "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert {"bleu", "chrf", "exact_match"} <= set(json.loads(evaluated.stdout))
