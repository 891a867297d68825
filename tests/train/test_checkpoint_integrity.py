"""Damaged checkpoints: checksums name the file and what is wrong, non-finite weights name the
tensor, and a resumed run falls back to the newest undamaged checkpoint and ends identical."""

from __future__ import annotations

import json

import pytest
import torch
from tests.train.train_toys import RegressionSource, Regressor, quiet_config

from rnnkit.train import Trainer, load_checkpoint, read_metadata, save_checkpoint, seed_everything
from rnnkit.train.checkpoint import load_model_state
from rnnkit.train.integrity import CHECKSUMS_FILE, CorruptCheckpointError, NonFiniteWeightsError
from rnnkit.train.resume import find_resumable


def _saved(tmp_path):
    torch.manual_seed(0)
    target = tmp_path / "ckpt"
    save_checkpoint(target, Regressor(), {"task": "toy", "step": 7},
                    trainer_state={"step": torch.tensor([1.0, 2.0])})
    return target


def _flip_bit(path, offset_from_end=10):
    blob = bytearray(path.read_bytes())
    blob[-offset_from_end] ^= 0x01
    path.write_bytes(bytes(blob))


def test_checksums_record_every_file_with_size_and_sha256(tmp_path):
    target = _saved(tmp_path)
    files = json.loads((target / CHECKSUMS_FILE).read_text())["files"]
    assert sorted(files) == ["metadata.json", "model.safetensors", "trainer_state.json",
                             "trainer_state.safetensors"]
    size = (target / "model.safetensors").stat().st_size
    assert files["model.safetensors"]["bytes"] == size
    assert len(files["model.safetensors"]["sha256"]) == 64


def test_a_flipped_bit_in_the_weights_is_named(tmp_path):
    target = _saved(tmp_path)
    _flip_bit(target / "model.safetensors")
    with pytest.raises(CorruptCheckpointError,
                       match=rf"checkpoint {target} is damaged: model\.safetensors changed "
                             r"after it was written: sha256 [0-9a-f]{64}"):
        load_checkpoint(target, Regressor())


def test_a_truncated_weights_file_is_named_with_its_sizes(tmp_path):
    target = _saved(tmp_path)
    weights = target / "model.safetensors"
    full = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CorruptCheckpointError,
                       match=rf"model\.safetensors is truncated: 100 of its {full} bytes"):
        load_checkpoint(target)


def test_an_edited_json_is_detected_even_when_it_still_parses(tmp_path):
    target = _saved(tmp_path)
    metadata = target / "metadata.json"
    metadata.write_text(metadata.read_text().replace('"step": 7', '"step": 8'))
    with pytest.raises(CorruptCheckpointError, match=r"metadata\.json changed after it was"):
        read_metadata(target)
    target = _saved(tmp_path)
    (target / "trainer_state.json").write_text('{"step": {"__tens')  # half-written
    with pytest.raises(CorruptCheckpointError, match=r"trainer_state\.json is truncated"):
        load_checkpoint(target)


def test_a_damaged_checksums_file_is_named(tmp_path):
    target = _saved(tmp_path)
    (target / CHECKSUMS_FILE).write_text('{"format": 1, "fil')
    with pytest.raises(CorruptCheckpointError, match=r"checksums\.json is not valid JSON"):
        load_checkpoint(target)


def test_without_checksums_a_truncated_file_still_names_the_path(tmp_path):
    """A checkpoint of an older rnnkit (no checksums.json): the parser's error is wrapped."""
    target = _saved(tmp_path)
    (target / CHECKSUMS_FILE).unlink()
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(CorruptCheckpointError,
                       match=rf"{target} is damaged: model\.safetensors cannot be read as "
                             r"safetensors \(SafetensorError: "):
        load_checkpoint(target)
    with pytest.raises(CorruptCheckpointError, match=r"model\.safetensors cannot be read"):
        load_model_state(weights)
    (target / "metadata.json").write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match=r"metadata\.json: not valid JSON"):
        read_metadata(target)


def test_nan_weights_name_the_tensor_and_do_not_blame_the_data(tmp_path):
    model = Regressor()
    with torch.no_grad():
        model.net[3].weight[0, :3] = float("nan")
        model.net[3].bias.fill_(float("inf"))
    save_checkpoint(tmp_path / "ckpt", model, {"a": 1})  # checksums match: saved this way
    with pytest.raises(NonFiniteWeightsError,
                       match=r"tensor 'net\.3\.bias' \(1,\) holds 0 NaN and 1 infinite of its 1 "
                             r"values .*not a problem of the data or learning rate") as caught:
        load_checkpoint(tmp_path / "ckpt", Regressor())
    assert "lower lr" not in str(caught.value)


def _train(run_dir, max_steps, resume=False, notices=None):
    seed_everything(0)
    model = Regressor()
    trainer = Trainer(model, RegressionSource(),
                      quiet_config(max_steps=max_steps, checkpoint_every=2, eval_every=4),
                      evaluate=lambda m: {"valid_loss": 1.0 / (1 + len(notices or []))},
                      run_dir=run_dir, notice=(notices.append if notices is not None else None))
    result = trainer.fit(resume=resume)
    return model, result


@pytest.mark.parametrize("damage", ["flip", "truncate", "nan"])
def test_resume_falls_back_to_the_previous_checkpoint_and_ends_identical(tmp_path, damage):
    reference, _ = _train(tmp_path / "straight", 10)
    _train(tmp_path / "run", 6)  # last at step 6, .last.previous at 4, best at 4
    last = tmp_path / "run/checkpoints/last"
    if damage == "flip":
        _flip_bit(last / "trainer_state.safetensors")
    elif damage == "truncate":
        (last / "model.safetensors").write_bytes(b"\x08\x00")
    else:
        (last / CHECKSUMS_FILE).unlink()  # as a checkpoint without checksums would be
        state = load_model_state(last / "model.safetensors")
        model = Regressor()
        state["net.0.weight"][1, 1] = float("nan")
        model.load_state_dict(state)
        save_checkpoint(tmp_path / "nan", model)
        (last / "model.safetensors").write_bytes((tmp_path / "nan/model.safetensors").read_bytes())
    notices: list[str] = []
    resumed, result = _train(tmp_path / "run", 10, resume=True, notices=notices)
    assert result.global_step == 10
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert len(notices) == 1 and "\n" not in notices[0]
    problem = {"flip": "trainer_state.safetensors changed after it was written",
               "truncate": "model.safetensors is truncated: 2 of its",
               "nan": "tensor 'net.0.weight' (16, 4) holds 1 NaN"}[damage]
    assert notices[0].startswith("resume: last is damaged (")
    assert problem in notices[0]
    assert notices[0].endswith(f"moved to last.damaged; resuming from "
                               f"{tmp_path}/run/checkpoints/.last.previous (step 4) instead")
    assert (tmp_path / "run/checkpoints/last.damaged").is_dir()
    assert read_metadata(tmp_path / "run/checkpoints/last")["trainer"]["step"] == 10


def test_resume_from_best_when_the_disk_filled_before_the_first_last(tmp_path):
    reference, _ = _train(tmp_path / "straight", 10)
    _train(tmp_path / "run", 6)
    for name in ("last", ".last.previous"):  # as if every write of `last` had failed
        for file in (tmp_path / "run/checkpoints" / name).iterdir():
            file.unlink()
        (tmp_path / "run/checkpoints" / name).rmdir()
    assert find_resumable(tmp_path / "run/checkpoints").path.name == "best"
    resumed, result = _train(tmp_path / "run", 10, resume=True, notices=[])
    assert result.global_step == 10
    assert all(torch.equal(t, resumed.state_dict()[n]) for n, t in reference.state_dict().items())


def test_resume_with_every_checkpoint_damaged_names_each(tmp_path):
    _train(tmp_path / "run", 6)
    for name in ("last", ".last.previous", "best"):
        (tmp_path / "run/checkpoints" / name / "model.safetensors").write_bytes(b"")
    with pytest.raises(CorruptCheckpointError,
                       match=r"no checkpoint is usable to resume from: last: model\.safetensors "
                             r"is truncated: 0 of .*; \.last\.previous: .*; best: "):
        _train(tmp_path / "run", 10, resume=True)
