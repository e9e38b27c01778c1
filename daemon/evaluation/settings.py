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


@dataclass(frozen=True)
class MaskSetting:
    """How a photo becomes a test sample: scale it so its short side is `short_side_factor` x the crop (never
    enlarged, unless it is smaller than the crop), take a seeded random `crop` x `crop` square, cut the hole."""

    name: str
    crop: int
    hole: str  # "centre" (a centred square of side `hole_side`) or "strokes" (free-form, `coverage` of the crop)
    hole_side: int = 0
    coverage: tuple[float, float] = (0.0, 0.0)
    short_side_factor: float = 2.0

    @property
    def short_side(self) -> int:
        return round(self.crop * self.short_side_factor)

    def describe(self) -> str:
        if self.hole == "centre":
            hole = f"the {self.hole_side}x{self.hole_side} centre hole"
        else:
            hole = (f"seeded random free-form strokes covering {self.coverage[0]:.0%}-{self.coverage[1]:.0%} of "
                    "the crop")
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
}
