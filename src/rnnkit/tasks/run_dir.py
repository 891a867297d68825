"""What ``rnnkit train`` may do with a run directory, and deleting only what it wrote.

Every run directory gets a marker, ``DIR/.rnnkit-run`` (JSON: rnnkit version, creation time).
``--overwrite`` deletes, by name, only the entries ``rnnkit train`` writes (:data:`OWNED_FILES`,
the checkpoints in ``checkpoints/``, the event files in ``tensorboard/``), and only in:

- a marked directory: anything else in it (notes, ``report.html``, exports) is left in place,
  and so is the directory; or
- an unmarked directory made by an rnnkit older than the marker: it must hold ``config.yaml``
  and ``task.json`` and nothing but rnnkit's own names, else it is refused untouched.

A run directory holding no checkpoint yet (stopped or killed before its first) has nothing to
lose: training into it again starts afresh without ``--overwrite``.

Refusals speak the Python API's terms (``resume=True``, ``overwrite=True``, ``run_dir``);
``rnnkit train`` rewords them as its flags (``--resume``, ``--overwrite``, ``--out``).
"""

from __future__ import annotations

import json
import shutil
import time
from fnmatch import fnmatch
from pathlib import Path

import rnnkit
from rnnkit.tasks.errors import RunDirError
from rnnkit.tasks.run_lock import LOCK_FILE
from rnnkit.train.durable import replace_file
from rnnkit.train.resume import RESUME_CANDIDATES
from rnnkit.train.trainer import CHECKPOINTS_DIR, METRICS_FILE, TENSORBOARD_DIR

MARKER_FILE = ".rnnkit-run"
CONFIG_FILE = "config.yaml"
TASK_FILE = "task.json"
SUMMARY_FILE = "summary.json"
OWNED_FILES = (MARKER_FILE, CONFIG_FILE, TASK_FILE, SUMMARY_FILE, METRICS_FILE,
               f"{METRICS_FILE}.tmp")  # the CSV logger's rewrite goes through the .tmp
# What a write killed midway leaves (rnnkit.train.durable.replace_file's temporary names).
TEMP_FILES = tuple(f".{name}.tmp-*" for name in (MARKER_FILE, CONFIG_FILE, TASK_FILE,
                                                  SUMMARY_FILE, METRICS_FILE))
# Inside checkpoints/: each checkpoint, the copy moved aside while one is replaced (kept for
# `last`), the temporary one being written (rnnkit.train.checkpoint), one found damaged by a
# resume (rnnkit.train.resume).
OWNED_CHECKPOINTS = ("best", "last", ".best.previous", ".last.previous", ".best.tmp-*",
                     ".last.tmp-*", "best.damaged", "last.damaged", ".last.previous.damaged",
                     "top-step-[0-9]*", ".top-step-[0-9]*")  # train.save_top_k's (train.top_k)
OWNED_EVENT_FILES = "events.out.tfevents.*"  # what TensorBoard's writer names its files
# The lock file is the live process's own (never cleared); a private name of it can remain
# from a process killed while taking the lock.
LOCK_FILES = (LOCK_FILE, f"{LOCK_FILE}.*")


def write_marker(run_dir: Path) -> None:
    """Mark ``run_dir`` as made by rnnkit (kept when it is already marked)."""
    if not is_marked(run_dir):
        record = {"rnnkit_version": rnnkit.__version__,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        replace_file(run_dir / MARKER_FILE, json.dumps(record) + "\n", "run marker")


def is_marked(run_dir: Path) -> bool:
    """True when ``run_dir`` holds an rnnkit marker (a JSON object naming the version)."""
    try:
        record = json.loads((run_dir / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "rnnkit_version" in record


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse what cannot be done before any work starts; nothing is written here."""
    if resume and overwrite:
        raise RunDirError("resume=True and overwrite=True exclude each other: continue or "
                          "replace")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} exists and is not a directory")
    if resume:
        checkpoints = run_dir / CHECKPOINTS_DIR
        resumable = any((checkpoints / name).is_dir() for name in RESUME_CANDIDATES)
        if not resumable or not (run_dir / TASK_FILE).is_file():
            raise RunDirError(f"{run_dir}: nothing to resume (no checkpoints/last or best); "
                              "train without resume=True to start it (no overwrite=True "
                              "needed)")
        return
    if not _entries(run_dir, skip=LOCK_FILES):
        return  # new, or empty
    refusal = _not_a_run(run_dir)
    if refusal is not None:
        verb = "overwrite it" if overwrite else "train into it"
        raise RunDirError(f"{run_dir} already exists and is not an rnnkit run ({refusal}); "
                          f"refusing to {verb}: choose another run_dir")
    if _has_checkpoint(run_dir) and not overwrite:
        raise RunDirError(f"{run_dir} already exists and holds a trained run{_made(run_dir)}; "
                          "pass resume=True to continue that run, overwrite=True to replace "
                          "it, or choose another run_dir for a new one")


def _made(run_dir: Path) -> str:
    """`` (made 2025-01-31T09:12:00+0000)`` from the marker, or ``""``."""
    try:
        created = json.loads((run_dir / MARKER_FILE).read_text(encoding="utf-8"))["created"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return f" (made {created})"


def clear_run_files(run_dir: Path) -> list[str]:
    """Delete what ``rnnkit train`` wrote in ``run_dir`` (checked by :func:`check_run_dir`),
    by name; return the names of the entries left, which rnnkit did not write."""
    for name in OWNED_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for stale in _entries(run_dir, only=(*LOCK_FILES[1:], *TEMP_FILES)):
        (run_dir / stale).unlink(missing_ok=True)
    left = []
    for subdir, patterns in ((CHECKPOINTS_DIR, OWNED_CHECKPOINTS),
                             (TENSORBOARD_DIR, (OWNED_EVENT_FILES,))):
        _clear_inside(run_dir / subdir, patterns)
        left += [f"{subdir}/{name}" for name in _entries(run_dir / subdir)]
    ours = (*LOCK_FILES, CHECKPOINTS_DIR, TENSORBOARD_DIR)
    return sorted([*left, *_entries(run_dir, skip=ours)])


def _clear_inside(directory: Path, patterns: tuple[str, ...]) -> None:
    """Delete the entries of ``directory`` matching ``patterns``; the directory too if that
    empties it."""
    if not directory.is_dir():
        return
    for name in _entries(directory, only=patterns):
        entry = directory / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if not any(directory.iterdir()):
        directory.rmdir()


def _not_a_run(run_dir: Path) -> str | None:
    """Why ``run_dir`` is not a run rnnkit may replace, or ``None`` when it is one."""
    if is_marked(run_dir):
        return None
    required = [name for name in (CONFIG_FILE, TASK_FILE) if not (run_dir / name).is_file()]
    foreign = _entries(run_dir, skip=(*OWNED_FILES, *TEMP_FILES, *LOCK_FILES, CHECKPOINTS_DIR,
                                      TENSORBOARD_DIR))
    for name, patterns in ((CHECKPOINTS_DIR, OWNED_CHECKPOINTS),
                           (TENSORBOARD_DIR, (OWNED_EVENT_FILES,))):
        if (run_dir / name).is_dir():
            foreign += [f"{name}/{e}" for e in _entries(run_dir / name, skip=patterns)]
        elif (run_dir / name).exists():
            foreign.append(name)
    if not required and not foreign:
        return None  # made by an rnnkit older than the marker
    missing = f"no {MARKER_FILE} marker"
    if required:
        missing += f", no {' or '.join(required)}"
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        missing += f", and it holds {shown}, which rnnkit does not write"
    return missing


def _has_checkpoint(run_dir: Path) -> bool:
    checkpoints = run_dir / CHECKPOINTS_DIR
    return any((checkpoints / name).exists() for name in ("best", "last", ".best.previous",
                                                           ".last.previous"))


def _entries(directory: Path, *, skip: tuple[str, ...] = (),
             only: tuple[str, ...] | None = None) -> list[str]:
    """Sorted names in ``directory`` not matching ``skip`` (and matching ``only``, if given)."""
    if not directory.is_dir():
        return []
    names = sorted(entry.name for entry in directory.iterdir())
    names = [n for n in names if not any(fnmatch(n, pattern) for pattern in skip)]
    if only is not None:
        names = [n for n in names if any(fnmatch(n, pattern) for pattern in only)]
    return names
