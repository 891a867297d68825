"""Checksums of a checkpoint's files, and the errors a damaged checkpoint raises.

Each checkpoint directory holds ``checksums.json``, written last, recording the size and
sha256 of every other file in it::

    {"format": 1, "files": {"model.safetensors": {"bytes": 5120, "sha256": "ab12..."}, ...}}

A reader checks every file against it before parsing any, so a truncated file (a disk that
filled, a copy cut short), a flipped bit or a half-written JSON is named as such (path and
what differs) instead of surfacing as a parser's error or as a model that trains to NaN.
Checkpoints written before this file existed are read without the check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from rnnkit.errors import RnnkitError

CHECKSUMS_FILE = "checksums.json"
CHECKSUMS_FORMAT = 1


class CorruptCheckpointError(RnnkitError, ValueError):
    """A checkpoint whose files are damaged: truncated, changed after they were written,
    unparseable, or holding non-finite weights. ``path`` is the checkpoint directory."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"checkpoint {path} is damaged: {problem}")
        self.path = Path(path)
        self.problem = problem


class NonFiniteWeightsError(CorruptCheckpointError):
    """A checkpoint holding NaN or infinite weights (rnnkit never saves those: the trainer
    stops first), named by tensor."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksums_json(directory: Path, names: Iterable[str]) -> str:
    """The ``checksums.json`` text recording size and sha256 of ``directory/name`` for each
    name (the files just written and flushed)."""
    files = {name: {"bytes": (directory / name).stat().st_size,
                    "sha256": sha256_of(directory / name)} for name in sorted(names)}
    return json.dumps({"format": CHECKSUMS_FORMAT, "files": files}, indent=2) + "\n"


def verify_checkpoint_files(directory: Path) -> None:
    """Check every file listed in ``directory/checksums.json`` (size first, then sha256).

    Raises :class:`CorruptCheckpointError` naming the file and what is wrong; does nothing
    for a checkpoint written before checksums were recorded (no ``checksums.json``).
    """
    manifest_path = directory / CHECKSUMS_FILE
    if not manifest_path.is_file():
        return
    files = _read_manifest(directory, manifest_path)
    for name, record in files.items():
        _verify_file(directory, name, record)


def _read_manifest(directory: Path, path: Path) -> Mapping[str, Mapping[str, object]]:
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CorruptCheckpointError(directory,
                                     f"{path.name} is not valid JSON ({error})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    valid = isinstance(files, dict) and all(
        isinstance(r, dict) and isinstance(r.get("bytes"), int) and isinstance(r.get("sha256"), str)
        for r in files.values())
    if not valid or "/" in "".join(files) or ".." in files:  # type: ignore[arg-type,operator]
        raise CorruptCheckpointError(
            directory, f"{path.name} does not have the expected form "
            '{"format": 1, "files": {NAME: {"bytes": N, "sha256": HEX}}}')
    return files  # type: ignore[return-value]


def _verify_file(directory: Path, name: str, record: Mapping[str, object]) -> None:
    path = directory / name
    if not path.is_file():
        raise CorruptCheckpointError(directory, f"{name} is missing (listed in {CHECKSUMS_FILE})")
    size, expected = path.stat().st_size, record["bytes"]
    if size < expected:  # type: ignore[operator]
        raise CorruptCheckpointError(
            directory, f"{name} is truncated: {size} of its {expected} bytes are there")
    if size != expected:
        raise CorruptCheckpointError(
            directory, f"{name} has {size} bytes, {expected} were written")
    actual = sha256_of(path)
    if actual != record["sha256"]:
        raise CorruptCheckpointError(
            directory, f"{name} changed after it was written: sha256 {actual}, "
            f"{record['sha256']} recorded in {CHECKSUMS_FILE} (a flipped bit or an edit)")


def check_finite_weights(directory: Path | str, state: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`NonFiniteWeightsError` naming the first tensor of ``state`` that holds
    NaN or infinite values (and how many)."""
    for name, tensor in state.items():
        if not tensor.is_floating_point() and not tensor.is_complex():
            continue
        finite = torch.isfinite(tensor)
        if bool(finite.all()):
            continue
        nan = int(torch.isnan(tensor).sum())
        infinite = int((~finite).sum()) - nan
        raise NonFiniteWeightsError(
            directory,
            f"tensor {name!r} {tuple(tensor.shape)} holds {nan} NaN and {infinite} infinite "
            f"of its {tensor.numel()} values (rnnkit saves only finite weights, so the file "
            "was changed after training wrote it; not a problem of the data or learning rate)")

