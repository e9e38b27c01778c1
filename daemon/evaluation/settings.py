"""What an evaluation run is asked to do: the run follows it, the report restates it as a command; and the mask
settings it may name (plain data: the command line lists them without loading the engine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class EvalSettings:
    data: Path
    out: Path
    masks: str = "centre128"
    methods: list[str] | None = None  # None: every registered method (those that cannot run are skipped)
    limit: int | None = None
    seed: int = 0
    crops: int = 1  # crops per photo
    grids: int = 4  # comparison grids for the first this many samples
    quiet: bool = False
    pairs: str | None = None  # a peer: blind pairs of ours (the first other method) against it, for judging by eye


@dataclass(frozen=True)
class MaskSetting:
    """How a photo becomes a test sample: scale it so its short side is `short_side_factor` x the crop (never
    enlarged, unless it is smaller than the crop), take a seeded random `crop` x `crop` square, cut the hole."""

    name: str
    crop: int
    hole: str  # "centre" (a centred square of side `hole_side`), "strokes" (free-form) or "object" (a lasso around
    # overlapping ellipses, anywhere but near the border); strokes and objects cover `coverage` of the crop
    hole_side: int = 0
    coverage: tuple[float, float] = (0.0, 0.0)
    margin: int = 0  # objects: the least distance in px from the hole to the crop's border
    short_side_factor: float = 2.0

    @property
    def short_side(self) -> int:
        return round(self.crop * self.short_side_factor)

    def describe(self) -> str:
        if self.hole == "centre":
            hole = f"the {self.hole_side}x{self.hole_side} centre hole"
        elif self.hole == "strokes":
            hole = (f"seeded random free-form strokes covering {self.coverage[0]:.0%}-{self.coverage[1]:.0%} of "
                    "the crop")
        else:
            hole = (f"a seeded random object-shaped hole (2-4 overlapping ellipses, upright or lying, grown 3-8 px "
                    f"as a lasso is) covering {self.coverage[0]:.0%}-{self.coverage[1]:.0%} of the crop, anywhere "
                    f"at least {self.margin} px from its border")
        return (f"{self.name}: each photo scaled (Lanczos) so its short side is {self.short_side} px "
                f"({self.short_side_factor:g}x the crop; never enlarged unless smaller than the crop), a seeded random "
                f"{self.crop}x{self.crop} crop, {hole}")


MASK_SETTINGS: dict[str, MaskSetting] = {
    # Yang et al. Table 1 (after the Context Encoder): 128x128 images, 64x64 centre hole. At 2x the crop, a crop
    # spans half the photo's short side: part of a scene (a face, a cup, a window), not a texture swatch or a
    # whole thumbnail.
    "centre128": MaskSetting("centre128", 128, "centre", hole_side=64),
    # The paper's high-resolution setting: 512x512 with a 256x256 hole.
    "centre512": MaskSetting("centre512", 512, "centre", hole_side=256),
    "freeform": MaskSetting("freeform", 256, "strokes", coverage=(0.10, 0.30)),
    "freeform512": MaskSetting("freeform512", 512, "strokes", coverage=(0.10, 0.30)),
    # What a user removes from a photo (issue 32): one object, selected with some slack, off centre.
    "objects": MaskSetting("objects", 512, "object", coverage=(0.08, 0.20), margin=32),
}
