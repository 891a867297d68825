"""Small slices of the bundled real-data samples, so CLI and task tests run in seconds."""

from __future__ import annotations

from pathlib import Path

from rnnkit.data.datasets import load_sample


def evenly(lines: list[str], count: int) -> list[str]:
    """``count`` lines spread over ``lines`` (bundled files are sorted by label or movie)."""
    step = max(1, len(lines) // count)
    return lines[::step][:count]


def small_copy(name: str, directory: Path, counts: dict[str, int], header: bool) -> dict[str, Path]:
    """Write ``counts[split]`` lines of each split of dataset ``name`` into ``directory``.

    With ``header`` the first line (CSV header) is kept; series keep contiguous rows.
    """
    sample = load_sample(name, directory / "cache")
    paths = {}
    for split, count in counts.items():
        lines = sample.paths[split].read_text(encoding="utf-8").splitlines()
        head, body = (lines[:1], lines[1:]) if header else ([], lines)
        chosen = body[:count] if name in ("air_passengers", "sunspots", "sine") else evenly(
            body, count)
        path = directory / f"{name}-{split}{sample.paths[split].suffix}"
        path.write_text("\n".join(head + chosen) + "\n", encoding="utf-8")
        paths[split] = path
    return paths


def small_text(directory: Path, chars: int = 4000) -> dict[str, Path]:
    """The first ``chars`` characters of the Shakespeare sample (train) and the next ones."""
    text = load_sample("shakespeare").paths["train"].read_text(encoding="utf-8")
    paths = {}
    for split, part in (("train", text[:chars]), ("valid", text[chars: chars + chars // 4])):
        paths[split] = directory / f"shakespeare-{split}.txt"
        paths[split].write_text(part, encoding="utf-8")
    return paths
