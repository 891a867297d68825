"""Saving and loading models as ``model.safetensors`` + a JSON description; never unpickles.

A model directory holds ``model.safetensors`` and either ``model.json`` (written by
:func:`save_model`) or a training checkpoint's ``metadata.json``; both must contain
``{"model_type": ..., "model_config": {...}}`` (other keys in ``metadata.json`` are ignored).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from rnnkit.models.registry import build_model, describe

WEIGHTS_FILE = "model.safetensors"
DESCRIPTION_FILES = ("model.json", "metadata.json")


def _replace_atomically(target: Path, write: Any) -> None:
    """Call ``write(temporary_path)``, fsync the file, then rename it over ``target``."""
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save_model(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (created if needed).

    Each file is replaced atomically; tied weights are stored once. Returns the directory.
    """
    directory = Path(directory)
    description = describe(model)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(description, indent=2, sort_keys=True) + "\n"
    _replace_atomically(
        directory / WEIGHTS_FILE, lambda path: safetensors.torch.save_model(model, path)
    )
    _replace_atomically(
        directory / "model.json", lambda path: Path(path).write_text(text, encoding="utf-8")
    )
    return directory


def read_description(directory: str | os.PathLike) -> dict[str, Any]:
    """``{"model_type", "model_config"}`` from ``model.json`` or else ``metadata.json``."""
    directory = Path(directory)
    for name in DESCRIPTION_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            description = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(description, dict):
            raise ValueError(f"{path}: expected a JSON object with 'model_type' and "
                             f"'model_config', got {type(description).__name__}")
        missing = [key for key in ("model_type", "model_config") if key not in description]
        if missing:
            raise ValueError(
                f"{path}: expected keys 'model_type' and 'model_config', missing {missing}"
            )
        if not isinstance(description["model_config"], dict):
            raise ValueError(f"{path}: 'model_config' must be an object, got "
                             f"{type(description['model_config']).__name__}")
        return description
    raise FileNotFoundError(
        f"{directory}: expected a model directory with {' or '.join(DESCRIPTION_FILES)}"
    )


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved in ``directory`` on ``device``, in eval mode.

    Weight names and shapes must match the description exactly (strict loading).
    """
    directory = Path(directory)
    description = read_description(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: weights file not found")
    model = build_model(description["model_type"], description["model_config"])
    try:
        missing, unexpected = safetensors.torch.load_model(
            model, weights, strict=False, device=str(device)
        )
    except RuntimeError as error:  # shape mismatches
        details = "; ".join(line.strip() for line in str(error).splitlines()[1:])
        raise ValueError(
            f"{weights}: weights do not match the {description['model_type']} config: {details}"
        ) from error
    if missing or unexpected:
        raise ValueError(
            f"{weights}: weights do not match the {description['model_type']} config "
            f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})"
        )
    return model.to(device).eval()
