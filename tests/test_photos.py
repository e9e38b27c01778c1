"""`neural-fill photos` (daemon/photos/), offline: the package downloads are faked (subprocess.run answers
apt-get, dpkg and pip with tiny trees built here), so no network is used."""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import random
import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from daemon.cli import photos as photos_command
from daemon.photos import assemble, catalogue, fetch, write
from daemon.photos import manifest as manifests
from daemon.photos.catalogue import Photo, Source
from daemon.photos.manifest import Entry

BG = "usr/share/backgrounds/"
DEB = Source("fake-deb", "debian", "fake-wallpapers", (BG,), photos={
    BG + "big.jpg": Photo("big"),
    BG + "small.jpg": Photo("small"),
    BG + "pair-l.png": Photo("pair-l", "pair"),
    BG + "pair-r.png": Photo("pair-r", "pair"),
}, excluded={BG + "render*.png": "a render"})
WHEEL = Source("fake-wheel", "pypi", "fake-data==2.0", ("fakedata/images/",), photos={
    "fakedata/images/a.png": Photo("a"),
    "fakedata/images/b.png": Photo("b"),
    "fakedata/images/sub/c.png": Photo("sub-c"),
}, excluded={"fakedata/images/lena.png": "no licence"})
GONE = Source("gone", "debian", "gone-package", ("usr/",), photos={"usr/x.png": Photo("x")})

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: upstream/big.jpg
       upstream/other.jpg
Copyright: 2021, Ann Photographer
License: CC-BY-4.0
 A licence text line.
"""


def image_bytes(size: tuple[int, int], fmt: str, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = random.Random(seed)
    picture = Image.new(mode, size)
    picture.putdata([tuple(rng.randrange(256) for _ in mode) if len(mode) > 1 else rng.randrange(256)
                     for _ in range(size[0] * size[1])])
    if mode == "RGBA":
        picture.putalpha(255)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


def deb_tree(root: Path) -> None:
    files = {
        BG + "big.jpg": image_bytes((100, 40), "JPEG", seed=1),
        BG + "small.jpg": image_bytes((32, 24), "JPEG", seed=2),
        BG + "pair-l.png": image_bytes((20, 10), "PNG", "L", seed=3),
        BG + "pair-r.png": image_bytes((20, 10), "PNG", "L", seed=4),
        BG + "render-1.png": image_bytes((8, 8), "PNG", seed=5),
        BG + "new.png": image_bytes((8, 8), "PNG", seed=6),
        "usr/share/doc/fake-wallpapers/copyright": COPYRIGHT.encode(),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / BG / "alias.jpg").symlink_to("small.jpg")  # another name of a reviewed file: not "unreviewed"


def wheel_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fakedata/__init__.py", "")
        archive.writestr("fakedata/images/a.png", image_bytes((16, 12), "PNG", "RGBA", seed=7))
        archive.writestr("fakedata/images/b.png", image_bytes((16, 12), "PNG", seed=8))
        archive.writestr("fakedata/images/sub/c.png", image_bytes((12, 16), "PNG", seed=9))
        archive.writestr("fakedata/images/lena.png", image_bytes((8, 8), "PNG", seed=10))
        archive.writestr("fake_data-2.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fake-data\nVersion: 2.0\n"
                         "Classifier: License :: OSI Approved :: MIT License\n\nA fake.\n")
    return buffer.getvalue()


@pytest.fixture
def fake(monkeypatch):
    """Fake sources and package clients; returns the commands run."""
    calls: list[list[str]] = []

    def run(command, cwd=None, capture_output=False, text=False, check=False):
        calls.append(command)
        done = subprocess.CompletedProcess(command, 0, "", "")
        if command[:2] == ["apt-get", "download"]:
            if command[2] != "fake-wallpapers":
                return subprocess.CompletedProcess(command, 100, "", f"E: Unable to locate package {command[2]}\n")
            (Path(cwd) / "fake-wallpapers_1.0-1_all.deb").write_bytes(b"!<arch>\n")
        elif command[:2] == ["dpkg-deb", "-f"]:
            done.stdout = "1.0-1\n"
        elif command[:2] == ["dpkg", "-x"]:
            deb_tree(Path(command[3]))
        elif command[1:4] == ["-m", "pip", "download"]:
            folder = Path(command[command.index("-d") + 1])
            (folder / "fake_data-2.0-py3-none-any.whl").write_bytes(wheel_bytes())
        else:
            raise AssertionError(f"unexpected command {command}")
        return done

    monkeypatch.setattr(fetch.subprocess, "run", run)
    monkeypatch.setattr(assemble, "SOURCES", {source.name: source for source in (DEB, WHEEL, GONE)})
    monkeypatch.setattr(write, "MAX_SIDE", 64)
    return calls


def test_assemble_writes_photos_and_manifest(tmp_path, fake):
    out, said = tmp_path / "photos", []
    manifest = assemble.assemble(out, ["fake-deb", "fake-wheel"], work=tmp_path / "work", say=said.append)

    assert not manifest.missing and not manifest.up_to_date
    assert not (tmp_path / "photos.partial").exists()
    entries = {entry.file: entry for entry in manifests.load_manifest(out)}
    assert entries == {entry.file: entry for entry in manifest.photos}
    assert sorted(entries) == ["fake-deb/big.png", "fake-deb/pair-l.png", "fake-deb/pair-r.png", "fake-deb/small.jpg",
                               "fake-wheel/a.png", "fake-wheel/b.png", "fake-wheel/sub-c.png"]
    for entry in entries.values():
        path = out / entry.file
        assert manifests.sha256_of(path) == entry.sha256
        with Image.open(path) as written:
            assert written.size == (entry.width, entry.height)
            assert written.mode == "RGB"

    big = entries["fake-deb/big.png"]  # 100x40 JPEG, long side over the limit: downscaled, written as PNG
    assert (big.width, big.height) == (64, 26)
    assert big.source == "fake-wallpapers==1.0-1" and big.original == BG + "big.jpg"
    assert (big.licence, big.credit) == ("CC-BY-4.0", "2021, Ann Photographer")  # upstream path, installed elsewhere
    small = entries["fake-deb/small.jpg"]  # a small RGB JPEG is copied byte for byte
    assert (out / small.file).read_bytes() == (tmp_path / "work/fake-deb" / BG / "small.jpg").read_bytes()
    assert (small.licence, small.credit) == ("GPL-2+", "2020 Someone")
    assert entries["fake-deb/pair-l.png"].group == "pair"
    wheel = entries["fake-wheel/sub-c.png"]
    assert (wheel.source, wheel.original, wheel.licence) == ("fake-data==2.0", "fakedata/images/sub/c.png",
                                                             "MIT License")
    assert (wheel.width, wheel.height) == (12, 16)

    data = json.loads((out / "manifest.json").read_text())
    assert data["requested"] == ["fake-deb", "fake-wheel"] and data["missing"] == []
    assert data["sources"]["fake-deb"] == {"package": "fake-wallpapers==1.0-1", "photos": 4, "excluded": 1,
                                           "licence_file": ""}
    assert data["sources"]["fake-wheel"]["excluded"] == 1
    assert data["notes"] == [f"fake-deb: {BG}new.png is unreviewed (neither a listed photo nor excluded); left out"]
    assert manifests.verify(out) == []


def test_second_run_does_nothing(tmp_path, fake):
    out = tmp_path / "photos"
    assemble.assemble(out, ["fake-deb", "fake-wheel"], say=lambda line: None)
    stamps = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    commands = len(fake)
    said = []
    again = assemble.assemble(out, ["fake-deb", "fake-wheel"], say=said.append)
    assert again.up_to_date and len(again.photos) == 7
    assert len(fake) == commands  # nothing downloaded
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == stamps
    assert any("up to date" in line and "nothing to do" in line for line in said)
    # another choice of sources is not "the same folder": rebuilt with just those
    fewer = assemble.assemble(out, ["fake-wheel"], say=lambda line: None)
    assert not fewer.up_to_date and {entry.source for entry in fewer.photos} == {"fake-data==2.0"}
    assert not (out / "fake-deb").exists()


def test_missing_source_is_reported_and_the_others_kept(tmp_path, fake, capsys):
    parser = argparse.ArgumentParser(prog="neural-fill")
    photos_command.add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["photos", "--out", str(tmp_path / "photos"), "--work", str(tmp_path / "work")])
    assert args.sources is None
    assert args.run(args) == 1

    written = manifests.read_manifest(tmp_path / "photos")
    assert len(written.photos) == 7
    [missing] = written.missing
    assert (missing.source, missing.package, missing.command) == ("gone", "gone-package",
                                                                  "apt-get download gone-package")
    assert "Unable to locate package gone-package" in missing.error
    printed = capsys.readouterr()
    assert "gone-package: `apt-get download gone-package` failed" in printed.out
    assert "could not get gone" in printed.err
    assert manifests.verify(tmp_path / "photos") == []
    # a folder with a missing source is not complete: the next run tries again
    again = assemble.assemble(tmp_path / "photos", work=tmp_path / "work", say=lambda line: None)
    assert not again.up_to_date and [item.source for item in again.missing] == ["gone"]


def test_verify_catches_a_corrupted_and_a_missing_file(tmp_path, fake):
    out = tmp_path / "photos"
    assemble.assemble(out, ["fake-deb"], say=lambda line: None)
    corrupted = out / "fake-deb/big.png"
    data = bytearray(corrupted.read_bytes())
    data[-20] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    (out / "fake-deb/small.jpg").unlink()
    assert manifests.verify(out) == ["fake-deb/big.png: checksum mismatch (changed or corrupted)",
                                  "fake-deb/small.jpg: missing"]
    repaired = assemble.assemble(out, ["fake-deb"], say=lambda line: None)
    assert not repaired.up_to_date and manifests.verify(out) == []
    assert manifests.verify(tmp_path / "elsewhere")[0].endswith("no manifest")


def test_refuses_an_out_folder_that_is_not_a_photos_folder(tmp_path, fake):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/thesis.tex").write_text("precious")
    with pytest.raises(manifests.PhotosError, match="not a photos folder"):
        assemble.assemble(tmp_path / "mine", ["fake-deb"], say=lambda line: None)
    assert (tmp_path / "mine/thesis.tex").read_text() == "precious"
    with pytest.raises(manifests.PhotosError, match="unknown source nope"):
        assemble.assemble(tmp_path / "photos", ["nope"], say=lambda line: None)


def entries_for_split() -> list[Entry]:
    entries = []
    for source, count in (("big", 40), ("mid", 7), ("tiny", 2), ("three", 3)):
        for index in range(count):
            group = f"scene{index // 4}" if source == "big" and index < 12 else ""  # three groups of 4
            entries.append(Entry(f"{source}/{index:02d}.png", f"{source}==1", f"x/{index}", "0" * 64, 8, 8, "CC0",
                                 group=group))
    return entries


def test_split_by_photo_keeps_photos_on_one_side_and_is_deterministic():
    entries = entries_for_split()
    training, validation = manifests.split_by_photo(entries)
    assert sorted(training + validation, key=lambda e: e.file) == sorted(entries, key=lambda e: e.file)
    assert not {entry.photo for entry in training} & {entry.photo for entry in validation}
    by_source = {name: [e for e in validation if e.source.startswith(name + "==")]
                 for name in ("big", "mid", "tiny", "three")}
    assert len(by_source["big"]) == 6 and len(by_source["mid"]) == 1 and len(by_source["three"]) == 1
    assert by_source["tiny"] == []  # fewer than 3 photos: all for training

    shuffled = entries[:]
    random.Random(5).shuffle(shuffled)
    assert manifests.split_by_photo(shuffled) == (training, validation)
    assert manifests.split_by_photo(entries, seed=1) != (training, validation)
    for seed in range(20):  # whatever the seed, a group is never split
        train, valid = manifests.split_by_photo(entries, seed=seed)
        assert not {e.photo for e in train} & {e.photo for e in valid}


def test_debian_copyright_matching():
    stanzas = fetch.parse_debian_copyright(COPYRIGHT + "\nFiles: nature/*.jpg\nCopyright: 2008 X\nLicense: GPL-3\n")
    assert fetch.debian_licence(stanzas, BG + "other.jpg") == ("CC-BY-4.0", "2021, Ann Photographer")
    assert fetch.debian_licence(stanzas, BG + "mate/nature/Aqua.jpg") == ("GPL-3", "2008 X")
    assert fetch.debian_licence(stanzas, BG + "unknown.png") == ("GPL-2+", "2020 Someone")
    assert fetch.debian_licence([], BG + "unknown.png") == ("not stated", "")


def test_the_curated_lists_are_consistent():
    for source in catalogue.SOURCES.values():
        names = [photo.name for photo in source.photos.values()]
        assert len(names) == len(set(names)), source.name
        for original in source.photos:
            assert any(original.startswith(root) for root in source.roots), original
            assert not [p for p in source.excluded if fnmatch.fnmatchcase(original, p)], original
        assert all(reason.strip() for reason in source.excluded.values())
