"""Checkpoints: atomic writes, tied weights, JSON + safetensors only, state round trips."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.train.train_toys import Recorder, RegressionSource, Regressor, quiet_config
from torch import nn

import rnnkit.train.checkpoint as checkpoint_module
from rnnkit.train import (
    Trainer,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    seed_everything,
)
from rnnkit.train.state_io import decode_state, encode_state


def _snapshot(directory):
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


class TiedLM(nn.Module):
    """Embedding and output layer share one weight tensor, as a tied language model does."""

    def __init__(self, vocab: int = 7, size: int = 5):
        super().__init__()
        self.embedding = nn.Embedding(vocab, size)
        self.output = nn.Linear(size, vocab)
        self.output.weight = self.embedding.weight


def test_failure_during_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    target = tmp_path / "checkpoints" / "last"
    model = Regressor()
    save_checkpoint(target, model, {"version": 1}, trainer_state={"step": torch.tensor(1)})
    before = _snapshot(target)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    with torch.no_grad():
        model.net[0].weight.add_(1.0)
    monkeypatch.setattr(checkpoint_module, "save_state", crash)  # after weights + metadata
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, model, {"version": 2}, trainer_state={"step": torch.tensor(2)})
    assert _snapshot(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["last"]  # no temp left behind


def test_crash_between_the_renames_is_recovered(tmp_path):
    target = tmp_path / "last"
    save_checkpoint(target, Regressor(), {"version": 1})
    # Simulate dying after moving the old checkpoint aside, before renaming the new one in.
    os.replace(target, tmp_path / ".last.previous")
    (tmp_path / ".last.tmp-dead").mkdir()
    assert read_metadata(target) == {"version": 1}  # readers find the moved-aside copy...
    assert (tmp_path / ".last.tmp-dead").exists()  # ...and never touch a writer's files
    save_checkpoint(target, Regressor(), {"version": 2})  # the next writer cleans up
    assert read_metadata(target) == {"version": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_replacing_a_checkpoint_swaps_the_whole_directory(tmp_path):
    target = tmp_path / "best"
    save_checkpoint(target, Regressor(), {"version": 1}, trainer_state={"a": 1})
    save_checkpoint(target, Regressor(), {"version": 2})
    assert read_metadata(target) == {"version": 2}
    assert not (target / "trainer_state.json").exists()  # nothing left over from version 1


def test_tied_weights_are_stored_once_and_restored_as_tied(tmp_path):
    torch.manual_seed(0)
    model = TiedLM()
    save_checkpoint(tmp_path / "ckpt", model, {"model": "tied"})
    restored = TiedLM()
    loaded = load_checkpoint(tmp_path / "ckpt", model=restored)
    assert set(loaded.model_state) == set(model.state_dict())
    assert torch.equal(restored.embedding.weight, model.embedding.weight)
    assert restored.output.weight is restored.embedding.weight


def test_loading_never_unpickles(tmp_path, monkeypatch):
    seed_everything(0)
    trainer_kwargs = dict(
        evaluate=lambda model: {"valid_loss": 1.0}, run_dir=tmp_path, metadata={"m": 1}
    )
    config = quiet_config(max_steps=6, eval_every=3)
    Trainer(Regressor(), RegressionSource(), quiet_config(max_steps=3), **trainer_kwargs).fit()

    def forbidden(*args, **kwargs):
        raise AssertionError("checkpoint loading must not unpickle")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = load_checkpoint(tmp_path / "checkpoints/last", model=Regressor())
    assert loaded.trainer_state["progress"]["global_step"] == 3
    recorder = Recorder()
    result = Trainer(
        Regressor(), RegressionSource(), config, callbacks=[recorder], **trainer_kwargs
    ).fit(resume=True)
    assert result.global_step == 6 and len(recorder.records) == 3


def test_checkpoint_contents_and_metadata(tmp_path):
    seed_everything(0)
    Trainer(
        Regressor(),
        RegressionSource(),
        quiet_config(max_steps=4, eval_every=2),
        evaluate=lambda model: {"valid_loss": 0.5, "accuracy": 0.75},
        run_dir=tmp_path,
        metadata={"model_type": "regressor", "config": {"hidden": 16}},
    ).fit()
    for name in ("best", "last"):
        directory = tmp_path / "checkpoints" / name
        files = {"model.safetensors", "metadata.json", "trainer_state.json", "checksums.json"}
        assert files | {"trainer_state.safetensors"} == {p.name for p in directory.iterdir()}
    metadata = read_metadata(tmp_path / "checkpoints/last")
    assert metadata["model_type"] == "regressor" and metadata["config"] == {"hidden": 16}
    summary = metadata["trainer"]
    assert (summary["step"], summary["epoch"], summary["best_step"]) == (4, 0, 2)
    assert summary["metrics"] == {"valid_loss": 0.5, "accuracy": 0.75}
    assert summary["config"]["max_steps"] == 4
    state = load_checkpoint(tmp_path / "checkpoints/last").trainer_state
    assert set(state) >= {"optimizer", "schedule", "rng", "loss_fn", "progress", "config"}
    assert state["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert state["progress"]["batch_in_epoch"] == 4


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_metadata(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors.*missing"):
        load_checkpoint(tmp_path / "empty")
    save_checkpoint(tmp_path / "corrupt", Regressor(), {"a": 1})
    (tmp_path / "corrupt" / "metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"corrupt is damaged: metadata\.json is truncated"):
        read_metadata(tmp_path / "corrupt")


def test_wrong_model_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "ckpt", Regressor(hidden=16))
    with pytest.raises(ValueError, match="does not fit the model Regressor"):
        load_checkpoint(tmp_path / "ckpt", model=Regressor(hidden=8))


def test_optimizer_and_rng_state_round_trip_exactly():
    model = Regressor()
    optimizer = torch.optim.AdamW(model.parameters())
    model.loss(next(RegressionSource().iter_epoch(0))).backward()
    optimizer.step()
    state = {"optimizer": optimizer.state_dict(), "np": np.random.get_state(legacy=False)}
    tree, tensors = encode_state(state)
    restored = decode_state(tree, tensors)
    assert restored["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    for index, values in state["optimizer"]["state"].items():
        for key, value in values.items():
            assert torch.equal(restored["optimizer"]["state"][index][key], value)
    np.testing.assert_array_equal(restored["np"]["state"]["key"], state["np"]["state"]["key"])


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=5),
)
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
        st.dictionaries(st.integers(-5, 5), children, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_trees)
def test_state_encoding_round_trips_any_tree(tree):
    encoded, tensors = encode_state({"tree": tree, "tensor": torch.arange(3)})
    decoded = decode_state(json.loads(json.dumps(encoded, allow_nan=False)), tensors)
    assert decoded["tree"] == tree
    assert type(decoded["tree"]) is type(tree)
    assert torch.equal(decoded["tensor"], torch.arange(3))


def test_state_encoding_rejects_unknown_objects():
    with pytest.raises(TypeError, match=r"'/a/0'.*object"):
        encode_state({"a": [object()]})
