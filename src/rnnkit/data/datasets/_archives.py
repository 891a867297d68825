"""Safe extraction from wheels, sdists and Debian packages, and importing pure-Python code
from a pinned package without installing it (so a rebuild never changes the user's env)."""

from __future__ import annotations

import importlib
import io
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from types import ModuleType


def _safe_relative(name: str, prefix: str) -> PurePosixPath | None:
    """``name`` below ``prefix`` as a relative path, or ``None`` (outside it, or escaping)."""
    path = PurePosixPath(name.removeprefix("./"))
    try:
        relative = path.relative_to(prefix) if prefix else path
    except ValueError:
        return None
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        return None
    return relative


def extract_tar(tar: tarfile.TarFile, target: Path, prefix: str = "") -> int:
    """Write the regular files under ``prefix`` of ``tar`` below ``target``; returns a count."""
    count = 0
    for member in tar.getmembers():
        relative = _safe_relative(member.name, prefix)
        handle = tar.extractfile(member) if member.isfile() and relative else None
        if handle is not None and relative is not None:
            destination = target.joinpath(*relative.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(handle.read())
            count += 1
    return count


def extract_zip(archive: Path, target: Path) -> int:
    """Write every file of a zip (wheel) below ``target``; returns a count."""
    count = 0
    with zipfile.ZipFile(archive) as wheel:
        for name in wheel.namelist():
            relative = _safe_relative(name, "")
            if relative is not None and not name.endswith("/"):
                destination = target.joinpath(*relative.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(wheel.read(name))
                count += 1
    return count


def deb_data_tar(deb: Path) -> tarfile.TarFile:
    """The ``data.tar.*`` member of a Debian package (an ``ar`` archive) as an open tar."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb.name} is not a Debian package (no ar header)")
    position = 8
    while position + 60 <= len(blob):
        header = blob[position: position + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        body = blob[position + 60: position + 60 + size]
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        position += 60 + size + size % 2  # members are 2-byte aligned
    raise ValueError(f"{deb.name} has no data.tar member")


def import_from_archive(archive: Path, module: str, version: str) -> ModuleType:
    """Import pure-Python ``module`` from a wheel or sdist, extracted next to the archive.

    Refuses a different version that is already imported in this process.
    """
    loaded = sys.modules.get(module)
    if loaded is None:
        target = archive.parent / f"{module}-{version}-src"
        if not target.is_dir():
            if archive.suffix == ".whl":
                extract_zip(archive, target)
            else:
                with tarfile.open(archive, "r:*") as tar:
                    extract_tar(tar, target, prefix=archive.name.removesuffix(".tar.gz"))
        sys.path.insert(0, str(target))
        try:
            loaded = importlib.import_module(module)
        finally:
            sys.path.remove(str(target))
    found = getattr(loaded, "__version__", version)
    if found != version:
        raise RuntimeError(f"{module} {found} is already imported; this rebuild needs the pinned "
                           f"{module} {version} (run it in a fresh process)")
    return loaded
