"""Comparison grids of real removals for docs/quality.md: a dry-grass field, roof slates, two facades, skies next
to a mast and to wires, a portrait's background and free-form object removals (SCENES), each filled by
Resynthesizer (GIMP's Heal Selection), PatchMatch, an earlier checkout's default (optional) and today's default.

Writes docs/quality/scene-<name>.png and prints each fill's time and no-reference texture match (the hole's
gradient energy over its surroundings'; about 1 matches). Needs the photo cache of `neural-fill photos` and the
peers (`pip install resynthesizer pypatchmatch`).

    .venv/bin/python bench/scene_grids.py [--previous CHECKOUT] [--scenes dune,walls]

`--previous` runs that checkout's default preset in a subprocess, e.g. after
`git worktree add /tmp/previous 74eeb23` (the default before the copying stage).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import binary_dilation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHOTOS = Path("/var/cache/neural-fill/photos")
PEERS = ("resynthesizer", "patchmatch")


@dataclass(frozen=True)
class Scene:
    photo: str  # under the photo cache
    side: int  # the photo is scaled so its shorter side is this, then a side x side square is cut
    left: int  # at this column
    hole: Callable[[int], np.ndarray]  # side -> bool mask
    caption: str


def ellipse(centre: tuple[int, int], radii: tuple[int, int]) -> Callable[[int], np.ndarray]:
    def draw(side: int) -> np.ndarray:
        y, x = np.mgrid[:side, :side]
        return ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 <= 1

    return draw


def lasso(points: list[tuple[int, int]], margin: int = 4) -> Callable[[int], np.ndarray]:
    """A hand-drawn selection around an object: the polygon, grown by `margin` px as users leave a border."""
    def draw(side: int) -> np.ndarray:
        canvas = Image.new("L", (side, side), 0)
        ImageDraw.Draw(canvas).polygon(points, fill=255)
        return binary_dilation(np.asarray(canvas) > 0, iterations=margin)

    return draw


SCENES = {
    "dune": Scene("mate-backgrounds/Dune.jpg", 512, 0, ellipse((256, 380), (75, 55)),
                  "a 150x110 ellipse in a dry-grass field"),
    "tiles": Scene("mvtb-data/roof.png", 512, 0, ellipse((340, 400), (75, 55)), "a 150x110 ellipse in roof slates"),
    "walls": Scene("mvtb-data/walls-l.png", 512, 0, ellipse((285, 270), (70, 42)),
                   "a brick facade between a planter and a down pipe"),
    "bridge": Scene("lomiri-wallpapers-16.04/Bridge_by_Sander_Klootwijk.png", 512, 150,
                    ellipse((312, 195), (50, 45)), "sky next to a pair of wires"),
    "mast": Scene("mvtb-data/roof.png", 512, 0, ellipse((128, 140), (40, 40)), "sky next to a finial's mast"),
    "notre-dame": Scene("mvtb-data/notre-dame.png", 512, 0, ellipse((300, 470), (60, 30)),
                        "a facade: the gallery of kings"),
    "astronaut": Scene("scikit-image/astronaut.png", 512, 0,
                       lasso([(350, 0), (468, 0), (470, 150), (462, 300), (420, 300), (352, 250), (340, 120)]),
                       "a portrait's background: the shuttle model removed"),
    "eiffel": Scene("mvtb-data/eiffel-1.png", 512, 200,
                    lasso([(432, 398), (452, 396), (466, 420), (470, 470), (466, 511), (414, 511), (416, 452)]),
                    "a free-form removal: the standing visitor"),
    "campus": Scene("mvtb-data/campus-P1070499.png", 426, 100,
                    lasso([(186, 312), (250, 310), (254, 396), (184, 398)]),
                    "a free-form removal: the bin in front of the planting"),
}


def scene_image(scene: Scene) -> np.ndarray:
    photo = Image.open(PHOTOS / scene.photo).convert("RGB")
    scale = scene.side / min(photo.size)
    photo = photo.resize((round(photo.size[0] * scale), round(photo.size[1] * scale)), Image.Resampling.LANCZOS)
    return np.asarray(photo.crop((scene.left, 0, scene.left + scene.side, scene.side))).copy()


PREVIOUS_FILL = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from engine import fill, get_preset
image, hole = np.load(sys.argv[2]), np.load(sys.argv[3])
np.save(sys.argv[4], fill(image, hole.astype(np.uint8) * 255, get_preset("default")))
"""


def previous_default(checkout: Path) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The default preset of another checkout of this project, run in its own process."""
    def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        with tempfile.TemporaryDirectory() as folder:
            paths = [os.path.join(folder, name) for name in ("image.npy", "hole.npy", "out.npy")]
            np.save(paths[0], image)
            np.save(paths[1], hole)
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            subprocess.run([sys.executable, "-c", PREVIOUS_FILL, str(checkout), *paths], check=True, env=env)
            return np.where(hole[..., None], np.load(paths[2]), image)

    return run


def main() -> int:
    from daemon.evaluation.grids import write_grid
    from daemon.evaluation.methods import Unavailable, make_method
    from daemon.evaluation.metrics import texture_match
    from daemon.evaluation.samples import Sample

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", type=Path, help="a checkout whose default preset is shown as 'previous'")
    parser.add_argument("--scenes", default=",".join(SCENES), help="comma-separated scene names")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "quality", help="folder for the grids")
    args = parser.parse_args()
    methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
    for name in PEERS:
        try:
            methods[name] = make_method(name).run
        except Unavailable as reason:
            print(f"{name} skipped: {reason}")
    if args.previous:
        methods["previous default"] = previous_default(args.previous)
    methods["default"] = make_method("full").run
    print(f"load average {os.getloadavg()[0]:.2f}")
    for key in args.scenes.split(","):
        scene = SCENES[key]
        hole = scene.hole(scene.side)
        sample = Sample(source=scene.photo, number=0, image=scene_image(scene), hole=hole, scale=1.0, top=0,
                        left=scene.left)
        given = sample.given()
        print(f"{key}: {scene.caption}")
        outputs = {}
        for name, run in methods.items():
            start = time.perf_counter()
            result = run(given, hole)
            seconds = time.perf_counter() - start
            match = texture_match(result, hole)
            print(f"{key:10s} {name:17s} {seconds:6.1f} s  texture match {match:.2f}", flush=True)
            outputs[f"{name}:{seconds:.1f} s, texture {match:.2f}"] = result
        write_grid(args.out / f"scene-{key}.png", sample, outputs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
