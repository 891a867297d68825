"""Safe extraction from wheels, sdists and Debian packages, and importing pure-Python code
from a pinned package without installing it (so a rebuild never changes the user's env).

Nothing is extracted before the archive's sha256 is checked against its pin, and nothing is
extracted from an archive holding a member that could write outside the target directory: an
absolute name, a ``..`` component, or a symbolic or hard link pointing outside it
(:class:`UnsafeArchiveError` names the archive, the member and why). Links that stay inside
and special files are not extracted: the builds read regular files only.
"""

from __future__ import annotations

import importlib
import io
import posixpath
import shutil
import stat
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from types import ModuleType

from rnnkit.errors import RnnkitError

from ..errors import ChecksumMismatchError
from .fetch import sha256_of


class UnsafeArchiveError(RnnkitError, ValueError):
    """An archive member that would be written outside the extraction directory."""


def verify_sha256(archive: Path, sha256: str) -> None:
    """Refuse ``archive`` unless its sha256 is the pinned ``sha256`` (before any extraction)."""
    actual = sha256_of(archive)
    if actual != sha256:
        raise ChecksumMismatchError(
            f"{archive}: sha256 {actual} differs from the pinned {sha256}; refusing to extract "
            "anything from it (delete the file to fetch it again)")


def _checked_name(archive: str, name: str) -> PurePosixPath:
    """``name`` as a relative path; an absolute name or a ``..`` component is refused."""
    unix = name.replace("\\", "/")  # a Windows separator must not hide a '..'
    path = PurePosixPath(unix)
    drive = len(unix) > 1 and unix[1] == ":"
    if unix.startswith("/") or drive or ".." in path.parts:
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} has an absolute path or a '..' component; refusing "
            "to extract anything from this archive")
    return PurePosixPath(*[part for part in path.parts if part not in ("", ".")])


def _check_link(archive: str, name: PurePosixPath, target: str, hard: bool) -> None:
    """Refuse a link whose target leaves the archive's root (a hard link names a member
    path; a symbolic link is relative to its own directory)."""
    base = "" if hard else str(name.parent)
    resolved = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
    if target.startswith(("/", "\\")) or resolved == ".." or resolved.startswith("../"):
        kind = "hard link" if hard else "symbolic link"
        raise UnsafeArchiveError(
            f"{archive}: member {str(name)!r} is a {kind} to {target!r}, outside the "
            "directory it is extracted to; refusing to extract anything from this archive")


def _below(prefix: str, name: PurePosixPath) -> PurePosixPath | None:
    try:
        relative = name.relative_to(prefix) if prefix else name
    except ValueError:
        return None
    return relative if relative.parts else None


def _destination(target: Path, relative: PurePosixPath) -> Path:
    destination = target.joinpath(*relative.parts)
    if not destination.resolve().is_relative_to(target.resolve()):  # a symlink already there
        raise UnsafeArchiveError(f"{destination}: resolves outside {target}; refusing to write")
    return destination


def extract_tar(tar: tarfile.TarFile, target: Path, prefix: str = "") -> int:
    """Write the regular files under ``prefix`` of ``tar`` below ``target``; returns a count.

    Every member's name is checked, and every link under ``prefix``, before anything is
    written (see the module docstring).
    """
    archive = str(tar.name or "tar archive")
    chosen = []
    for member in tar.getmembers():
        name = _checked_name(archive, member.name)
        relative = _below(prefix, name)
        if relative is None:
            continue
        if member.issym() or member.islnk():
            _check_link(archive, name, member.linkname, hard=member.islnk())
        elif member.isfile():
            chosen.append((member, relative))
    for member, relative in chosen:
        handle = tar.extractfile(member)
        if handle is not None:
            destination = _destination(target, relative)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(handle.read())
    return len(chosen)


def extract_zip(archive: Path, target: Path) -> int:
    """Write every regular file of a zip (wheel) below ``target``; returns a count.

    Every member is checked before anything is written (see the module docstring).
    """
    chosen = []
    with zipfile.ZipFile(archive) as wheel:
        for info in wheel.infolist():
            name = _checked_name(str(archive), info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):  # stored as a file holding the link's target
                link = wheel.read(info).decode("utf-8", "replace")
                _check_link(str(archive), name, link, hard=False)
            elif not info.is_dir() and name.parts and (mode == 0 or stat.S_ISREG(mode)):
                chosen.append((info, name))
        for info, name in chosen:
            destination = _destination(target, name)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(wheel.read(info))
    return len(chosen)


def deb_data_tar(deb: Path, sha256: str) -> tarfile.TarFile:
    """The ``data.tar.*`` member of a Debian package (an ``ar`` archive) as an open tar,
    once ``deb``'s sha256 is the pinned ``sha256``."""
    verify_sha256(deb, sha256)
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


def import_from_archive(archive: Path, module: str, version: str, sha256: str) -> ModuleType:
    """Import pure-Python ``module`` from a wheel or sdist, extracted next to the archive.

    The archive's sha256 must be the pinned ``sha256``, and it is extracted afresh each time:
    a copy left by an earlier build is never trusted, as importing runs its code. Refuses a
    different version that is already imported in this process.
    """
    loaded = sys.modules.get(module)
    if loaded is None:
        verify_sha256(archive, sha256)
        target = archive.parent / f"{module}-{version}-src"
        shutil.rmtree(target, ignore_errors=True)
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
        raise RuntimeError(f"{module} {found} is already imported; this rebuild needs the "
                           f"pinned {module} {version} (run it in a fresh process)")
    return loaded
