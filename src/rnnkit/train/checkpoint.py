"""Checkpoint directories: safetensors + JSON, written atomically, read without unpickling.

A checkpoint is a directory holding

- ``model.safetensors``: the model's ``state_dict``. Tensors shared between parameters (tied
  embeddings) are stored once; the file's metadata maps each dropped name to the kept one.
- ``metadata.json``: the caller's JSON-able dict (model type and config, vocabulary, task), plus
  the trainer's own summary under the ``"trainer"`` key.
- ``trainer_state.safetensors`` + ``trainer_state.json`` (optional): optimizer, schedule, RNG,
  data position, early stopping and loss-function state, to resume a run exactly.

Writing goes to a temporary sibling directory that is flushed to disk and then renamed into
place, so a crash mid-write leaves the previous checkpoint untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_model

from rnnkit.train.state_io import fsync_path, load_state, read_json, save_state, write_json

MODEL_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
TRAINER_STATE_JSON = "trainer_state.json"
TRAINER_STATE_TENSORS = "trainer_state.safetensors"
TRAINER_KEY = "trainer"
"""Key of ``metadata.json`` that the trainer fills (step, epoch, metrics); callers leave it."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    - ``model_state``: the full ``state_dict`` (tied names restored), tensors on the requested
      device.
    - ``metadata``: the parsed ``metadata.json``.
    - ``trainer_state``: the resume state, or ``None`` if the checkpoint has none or it was not
      requested.
    """

    model_state: dict[str, torch.Tensor]
    metadata: dict[str, Any]
    trainer_state: dict[str, Any] | None


def save_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    metadata: Mapping[str, Any] | None = None,
    trainer_state: Any = None,
) -> Path:
    """Atomically write ``model`` (+ ``metadata`` and optional ``trainer_state``) to ``directory``.

    An existing checkpoint at ``directory`` is replaced only once the new one is complete on disk.
    Returns the directory.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    metadata = _check_metadata(metadata)

    def write(tmp: Path) -> None:
        save_model(model, str(tmp / MODEL_FILE), metadata={"format": "pt"})
        fsync_path(tmp / MODEL_FILE)
        write_json(tmp / METADATA_FILE, metadata)
        if trainer_state is not None:
            save_state(trainer_state, tmp / TRAINER_STATE_JSON, tmp / TRAINER_STATE_TENSORS)

    target = Path(directory)
    _replace_directory_atomically(target, write)
    return target


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(f"metadata: expected a dict with string keys, got {metadata!r:.200}")
    return dict(metadata)


def _backup_of(target: Path) -> Path:
    return target.with_name(f".{target.name}.previous")


def _replace_directory_atomically(target: Path, write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    backup = _backup_of(target)
    try:
        write(tmp)
        fsync_path(tmp)
        # POSIX cannot atomically swap two directories, so the old one is moved aside first;
        # _recover() puts it back if we die between the two renames.
        if target.exists():
            os.replace(target, backup)
        os.replace(tmp, target)
        fsync_path(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _recover(target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def _recover(target: Path) -> None:
    """Undo an interrupted replacement: restore the moved-aside checkpoint, drop stale temps."""
    backup = _backup_of(target)
    if not target.exists() and backup.is_dir():
        os.replace(backup, target)
    elif backup.is_dir():
        shutil.rmtree(backup, ignore_errors=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _existing_checkpoint(directory: str | Path) -> Path:
    """The directory to read: ``directory``, or its moved-aside copy if a writer died between
    its two renames. Readers never rename or delete (a trainer may be writing right now)."""
    path = Path(directory)
    if not path.exists() and (_backup_of(path) / MODEL_FILE).is_file():
        path = _backup_of(path)
    if not (path / MODEL_FILE).is_file():
        raise FileNotFoundError(
            f"checkpoint directory {str(path)!r}: expected {MODEL_FILE} inside, "
            + ("but it is missing" if path.is_dir() else "but the directory does not exist")
        )
    return path


def read_metadata(directory: str | Path) -> dict[str, Any]:
    """The parsed ``metadata.json`` of the checkpoint at ``directory``."""
    return read_json(_existing_checkpoint(directory) / METADATA_FILE)


def load_model_state(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a ``model.safetensors`` into a full ``state_dict``, re-creating tied names."""
    with safe_open(str(path), framework="pt", device=str(device)) as handle:
        dropped_to_kept = handle.metadata() or {}
        state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    for dropped, kept in dropped_to_kept.items():
        if kept in state and dropped not in state:
            state[dropped] = state[kept]
    return state


def load_checkpoint(
    directory: str | Path,
    model: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
    with_trainer_state: bool = True,
) -> Checkpoint:
    """Read the checkpoint at ``directory``; if ``model`` is given, load the weights into it.

    Uses only JSON and safetensors, never pickle. Trainer-state tensors stay on CPU.
    """
    path = _existing_checkpoint(directory)
    model_state = load_model_state(path / MODEL_FILE, device)
    if model is not None:
        try:
            model.load_state_dict(model_state)
        except RuntimeError as error:
            raise ValueError(
                f"checkpoint {str(path)!r} does not fit the model {type(model).__name__}: {error}"
            ) from error
    trainer_state = None
    if with_trainer_state and (path / TRAINER_STATE_JSON).is_file():
        trainer_state = load_state(path / TRAINER_STATE_JSON, path / TRAINER_STATE_TENSORS)
    return Checkpoint(model_state, read_json(path / METADATA_FILE), trainer_state)
