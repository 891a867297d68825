"""Checkpoint directories: safetensors + JSON, written atomically, read without unpickling.

A checkpoint is a directory holding

- ``model.safetensors``: the model's ``state_dict``. Tensors shared between parameters (tied
  embeddings) are stored once; the file's metadata maps each dropped name to the kept one.
- ``metadata.json``: the caller's JSON-able dict (model type and config, vocabulary, task), plus
  the trainer's own summary under the ``"trainer"`` key.
- ``trainer_state.safetensors`` + ``trainer_state.json`` (optional): optimizer, schedule, RNG,
  data position, early stopping and loss-function state, to resume a run exactly.

- ``checksums.json``: size and sha256 of each file above, written last
  (:mod:`rnnkit.train.integrity`); every load checks them first.

Writing goes to a temporary sibling directory that is flushed to disk and then renamed into
place, so a crash mid-write leaves the previous checkpoint untouched. ``keep_previous=True``
(the trainer's ``last``) keeps the replaced checkpoint as ``.last.previous``, a second good copy
that :func:`find_resumable` falls back to when ``last`` is damaged. A write that fails (full
disk, read-only directory) raises :class:`~rnnkit.train.durable.WriteError` naming the
checkpoint and leaves no temporary files.
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
from safetensors.torch import _remove_duplicate_names, load_file, save

from rnnkit.train.durable import WriteError, fsync_directory, write_new_file
from rnnkit.train.integrity import (
    CHECKSUMS_FILE,
    CorruptCheckpointError,
    check_finite_weights,
    checksums_json,
    verify_checkpoint_files,
)
from rnnkit.train.state_io import decode_state, json_bytes, read_json, save_state

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
    keep_previous: bool = False,
) -> Path:
    """Atomically write ``model`` (+ ``metadata`` and optional ``trainer_state``) to ``directory``.

    An existing checkpoint at ``directory`` is replaced only once the new one is complete on disk;
    with ``keep_previous`` it stays as ``.NAME.previous`` beside it. Returns the directory.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    metadata = _check_metadata(metadata)

    def write(tmp: Path) -> None:
        write_new_file(tmp / MODEL_FILE, _model_bytes(model))
        write_new_file(tmp / METADATA_FILE, json_bytes(metadata))
        if trainer_state is not None:
            save_state(trainer_state, tmp / TRAINER_STATE_JSON, tmp / TRAINER_STATE_TENSORS)
        names = [entry.name for entry in tmp.iterdir()]
        write_new_file(tmp / CHECKSUMS_FILE, checksums_json(tmp, names).encode("utf-8"))

    target = Path(directory)
    try:
        _replace_directory_atomically(target, write, keep_previous)
    except OSError as error:
        if isinstance(error, WriteError):
            raise
        raise WriteError(target, error, "checkpoint") from error
    return target


def _model_bytes(model: torch.nn.Module) -> bytes:
    """The ``state_dict`` as safetensors bytes, tensors shared by several names stored once
    (as ``safetensors.torch.save_model`` does; bytes, so one write helper handles failures)."""
    state = model.state_dict()
    dropped_to_kept: dict[str, str] = {}
    for kept, dropped in _remove_duplicate_names(state).items():
        for name in dropped:
            dropped_to_kept[name] = kept
            del state[name]
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state.items()}
    return save(tensors, metadata={"format": "pt", **dropped_to_kept})


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(f"metadata: expected a dict with string keys, got {metadata!r:.200}")
    return dict(metadata)


def _backup_of(target: Path) -> Path:
    return target.with_name(f".{target.name}.previous")


def damaged_name(path: Path) -> Path:
    """Where a damaged checkpoint is moved aside (kept for inspection, never read)."""
    return path.with_name(f"{path.name}.damaged")


def _replace_directory_atomically(target: Path, write: Callable[[Path], None],
                                  keep_previous: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target, keep_previous)
    backup = _backup_of(target)
    if target.exists():
        # The older copy goes first, so the disk never holds more than the current checkpoint
        # and the one being written; `target` stays intact until the new one is complete.
        _delete_directory(backup)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(tmp)
        fsync_directory(tmp)
        # POSIX cannot atomically swap two directories, so the old one is moved aside first;
        # _recover() puts it back if we die between the two renames.
        if target.exists():
            os.replace(target, backup)
        os.replace(tmp, target)
        fsync_directory(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _recover(target, keep_previous)
        raise
    if not keep_previous:
        _delete_directory(backup)


def delete_checkpoint(directory: str | Path) -> None:
    """Delete the checkpoint at ``directory`` and its moved-aside copy, never leaving a half
    checkpoint under either name (a missing one is skipped)."""
    target = Path(directory)
    _delete_directory(_backup_of(target))
    _delete_directory(target)


def _delete_directory(path: Path) -> None:
    """Delete a checkpoint directory so that no half-deleted copy is ever seen under its name:
    renamed to a temporary name first (one a later ``_recover`` clears if we die midway)."""
    if not path.is_dir():
        return
    doomed = Path(tempfile.mkdtemp(prefix=f".{path.name.lstrip('.').split('.')[0]}.tmp-old-",
                                   dir=path.parent))
    os.replace(path, doomed)  # onto the empty directory mkdtemp made
    shutil.rmtree(doomed, ignore_errors=True)


def _recover(target: Path, keep_previous: bool) -> None:
    """Undo an interrupted replacement: restore the moved-aside checkpoint, drop stale temps
    (and the moved-aside copy, unless it is kept as the previous checkpoint)."""
    backup = _backup_of(target)
    if not target.exists() and backup.is_dir():
        os.replace(backup, target)
    elif backup.is_dir() and not keep_previous:
        _delete_directory(backup)
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


def _read_checkpoint_json(directory: Path, name: str) -> Any:
    try:
        return read_json(directory / name)
    except ValueError as error:  # checkpoints older than checksums.json reach this
        raise CorruptCheckpointError(directory, str(error)) from None


def read_metadata(directory: str | Path) -> dict[str, Any]:
    """The parsed ``metadata.json`` of the checkpoint at ``directory`` (checksum-checked)."""
    path = _existing_checkpoint(directory)
    verify_checkpoint_files(path)
    return _read_checkpoint_json(path, METADATA_FILE)


def load_model_state(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a ``model.safetensors`` into a full ``state_dict``, re-creating tied names.

    A file safetensors cannot parse (truncated, garbled header) raises
    :class:`~rnnkit.train.integrity.CorruptCheckpointError` naming it.
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            dropped_to_kept = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except Exception as error:  # safetensors raises its own SafetensorError, or OSError
        if isinstance(error, FileNotFoundError):
            raise
        raise CorruptCheckpointError(
            path.parent, f"{path.name} cannot be read as safetensors "
            f"({type(error).__name__}: {error})") from None
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

    Uses only JSON and safetensors, never pickle. Trainer-state tensors stay on CPU. Every file
    is checked against ``checksums.json`` first, and the weights must be finite: a damaged
    checkpoint raises :class:`~rnnkit.train.integrity.CorruptCheckpointError` (a
    ``ValueError``) naming the directory, the file or tensor, and what is wrong.
    """
    path = _existing_checkpoint(directory)
    verify_checkpoint_files(path)
    model_state = load_model_state(path / MODEL_FILE, device)
    check_finite_weights(path, model_state)
    metadata = _read_checkpoint_json(path, METADATA_FILE)
    trainer_state = None
    if with_trainer_state and (path / TRAINER_STATE_JSON).is_file():
        trainer_state = _load_trainer_state(path)
    if model is not None:
        try:
            model.load_state_dict(model_state)
        except RuntimeError as error:
            raise ValueError(
                f"checkpoint {str(path)!r} does not fit the model {type(model).__name__}: {error}"
            ) from error
    return Checkpoint(model_state, metadata, trainer_state)


def _load_trainer_state(path: Path) -> Any:
    tree = _read_checkpoint_json(path, TRAINER_STATE_JSON)
    try:
        tensors = load_file(str(path / TRAINER_STATE_TENSORS))
        return decode_state(tree, tensors)
    except Exception as error:  # a missing or unparseable file, or a pair out of step
        raise CorruptCheckpointError(
            path, f"{TRAINER_STATE_TENSORS} cannot be read with {TRAINER_STATE_JSON} "
            f"({type(error).__name__}: {error})") from None
