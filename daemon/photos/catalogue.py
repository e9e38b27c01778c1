"""Which files of which packages are photos: every source, its photos and the images left out, with why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from . import write
from .manifest import FORMAT


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
    text = json.dumps({"format": FORMAT, "max_side": write.MAX_SIDE,
                       "sources": {name: asdict(source) for name, source in sorted(sources.items())}},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
