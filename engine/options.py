"""Every fill option in one typed structure: defaults, a one-line description each, presets.

The CLI, the daemon protocol and the GIMP dialog are generated from or checked against this module,
so an option is added here once and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import OptionsError

TEXTURE_LAYERS = ("relu3_1", "relu4_1")
CONTENT_PREDICTORS = ("patches", "network", "diffusion", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
# The most synthesis work a fill may ask for per crop, in times the `paper` preset's (FillOptions.work): more
# iterations, scales or working size than this buy nothing a fill can use, and would hold a daemon's one worker for
# hours (docs/security.md).
MAX_WORK = 8


def _opt(default: Any, help: str, **limits: Any) -> Any:
    """A dataclass field carrying its one-line description and numeric limits."""
    metadata = {"help": help, **limits}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class FillOptions:
    working_size: int = _opt(512, "Longest side, in pixels, of a crop at the finest scale; bigger crops are "
                             "synthesised at this size and brought back to native resolution.", min=64, max=2048)
    narrow_size: int = _opt(0, "Longest side, in pixels, at which a narrow hole (strokes, a scratch: no pixel over "
                            "64 px from its border) is synthesised when its crop is bigger than working_size, with "
                            "one scale more per doubling (0: working_size). Copying a narrow hole costs little, and "
                            "strokes lose their finest detail when scaled down.", min=0, max=2048)
    scales: int = _opt(3, "Pyramid levels, coarse to fine, each twice the size of the one before.", min=1, max=5)
    iterations: tuple[int, ...] = _opt((100, 100, 100), "L-BFGS iterations per scale, coarsest first (one value "
                                       "serves every scale; with fewer values than scales the first repeats for "
                                       "the coarser ones, with more the coarsest extra ones are dropped).",
                                       min=0, max=1000)
    content: str = _opt("network", "Content predictor giving the global structure: 'network' (the trained content "
                        "network; patch-based completion instead where it continues the hole's border clearly "
                        "better, as on regular patterns), 'patches' (coarse patch-based completion), 'diffusion' "
                        "(harmonic smooth fill) or 'none' (no content term: the paper's ablation).",
                        choices=CONTENT_PREDICTORS)
    content_weight: float = _opt(20.0, "Weight of the content term (relu4_2 features vs. the content reference).",
                                 min=0.0, max=1e6)
    texture_weight: float = _opt(3e-5, "Weight of the texture term per VGG layer (neural patch matching).", min=0.0,
                                 max=1e3)
    tv_weight: float = _opt(1e-4, "Weight of the total-variation smoothness term.", min=0.0, max=1e3)
    texture_layers: tuple[str, ...] = _opt(("relu3_1", "relu4_1"), "VGG-19 layers whose 3x3 patches are matched.",
                                           choices=TEXTURE_LAYERS)
    candidate_stride: int = _opt(1, "Stride, in feature cells, between candidate patches from the known region.",
                                 min=1, max=8)
    nn_every: int = _opt(5, "L-BFGS iterations between nearest-neighbour searches (0 = search once at the start "
                         "of each scale, as the reference's fast release).", min=0, max=1000)
    vote_iterations: tuple[int, ...] = _opt((3, 2, 1), "Rounds per scale, coarsest first, of copying real known "
                                            "pixels into the hole along the neural-patch matches, after the L-BFGS "
                                            "iterations (counted per scale as `iterations` is; 0 = none). A hole "
                                            "no deeper than 64 px copies by the pixel PatchMatch alone: "
                                            "pixel_iterations rounds, or these when that is 0.",
                                            min=0, max=50)
    pixel_iterations: int = _opt(3, "Rounds of pixel-precise PatchMatch refinement after each scale's copying "
                                 "(0 = none).", min=0, max=20)
    beside_iterations: int = _opt(3, "Rounds of a last pixel PatchMatch that copies from right beside the hole, at "
                                  "the crop's size and again at native size when the crop was synthesised smaller "
                                  "and detail_transfer is on (0 = none).", min=0, max=20)
    completion: bool = _opt(True, "Fill holes wider than a stroke by patch completion: the coarsest level (64-127 px) "
                            "in order of priority, so edges reaching the hole go straight across, then coarse to "
                            "fine, every pixel a copy of known pixels (the content prediction steers which). The "
                            "scales' iterations and vote_iterations then serve narrow holes only.")
    augment: bool = _opt(False, "Also copy from mirrored, rotated (+-pi/24) and scaled (1.05^+-1) copies of the "
                         "photo, as the reference's patch bank does.")
    detail_gain: float = _opt(1.5, "Largest factor by which the fill's fine detail is raised where it is weaker "
                              "than its surroundings' (1 = never).", min=1.0, max=4.0)
    context: float = _opt(0.5, "Context kept around each hole, as a fraction of the hole's larger side on each "
                          "side (0.5 puts the hole in the middle half of its crop, as in the paper).", min=0.1, max=4.0)
    min_context: int = _opt(32, "Smallest context margin, in pixels, on each side of a hole.", min=8, max=1024)
    detail_transfer: bool = _opt(True, "Bring back native-resolution detail from the photo's known pixels when a "
                                 "crop is larger than the working size (matched detail, then copying from beside "
                                 "the hole at native size).")
    seed: int = _opt(0, "Random seed: the same seed, input and device give the same result.", min=0, max=2**63 - 1)
    device: str = _opt("auto", "Compute device: auto (cuda, then mps, then cpu), cpu, cuda or mps.", choices=DEVICES)
    precision: str = _opt("auto", "Arithmetic of the VGG-19 and content-network passes: auto (bfloat16 on a CPU "
                          "with bf16 units (AMX, AVX-512 BF16) and on GPUs that have it, float16 on other CUDA GPUs, "
                          "float32 otherwise), float32, bfloat16 or float16 (GPUs only: a CPU emulates it). The "
                          "pixels and the matching stay float32.", choices=PRECISIONS)
    threads: int = _opt(0, "CPU threads for torch and the pixel search (0 = one per core this process may use, "
                        "less the cores other processes keep busy, chosen at each fill; never more than those "
                        "cores). The count changes the speed, never the pixels.", min=0, max=256)

    def __post_init__(self) -> None:
        # Tuples keep the structure hashable and frozen even when lists come in from msgpack or argparse.
        for name in ("iterations", "vote_iterations", "texture_layers"):
            value = getattr(self, name)
            if isinstance(value, (str, int)):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        self.validate()

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if isinstance(value, tuple) and not value:
                raise OptionsError(f"option '{f.name}' needs at least one value")
            for v in values:
                _check_one(f, v)

    def iterations_per_scale(self) -> tuple[int, ...]:
        """One count per scale, coarsest first: so `scales` can change without restating `iterations`."""
        return _per_scale(self.iterations, self.scales)

    def vote_iterations_per_scale(self) -> tuple[int, ...]:
        return _per_scale(self.vote_iterations, self.scales)

    def work(self) -> float:
        """A crop's synthesis rounds (L-BFGS iterations and copying rounds), each weighted by its scale's area in
        megapixels at the working size: what a fill's time grows with."""
        rounds = [a + b for a, b in zip(self.iterations_per_scale(), self.vote_iterations_per_scale(), strict=True)]
        return sum(count * (self.working_size / 2 ** (self.scales - 1 - scale)) ** 2
                   for scale, count in enumerate(rounds)) / 1e6

    def check_work(self) -> None:
        """OptionsError when these options ask for more work than MAX_WORK: checked where a fill starts and where a
        daemon takes options, not in validate() (a narrow hole's crop raises its working size, engine/pipeline.py)."""
        times = self.work() / PRESETS["paper"][1].work()
        if times > MAX_WORK:
            raise OptionsError(f"these options ask for {times:.0f} times the synthesis work of the "
                               f"'paper' preset per crop (working_size x working_size over the scales, times their "
                               f"iterations and vote_iterations); at most {MAX_WORK} times is taken: use fewer "
                               "iterations or scales, or a smaller working_size")

    def replace(self, /, **changes: Any) -> FillOptions:  # `/`: an option named `self` is just unknown
        for name in changes:
            if name not in OPTION_TYPES:
                raise _unknown(name)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], preset: str = "default") -> FillOptions:
        """Options from a preset with some fields overridden (unknown names are an error)."""
        return get_preset(preset).replace(**values)

    @staticmethod
    def describe() -> list[dict[str, Any]]:
        """Name, type, default and description of every option: the schema the CLI and the protocol use."""
        rows = []
        for f in dataclasses.fields(FillOptions):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append({"name": f.name, "type": str(OPTION_TYPES[f.name]), "default": default, **f.metadata})
        return rows


def _per_scale(counts: tuple[int, ...], scales: int) -> tuple[int, ...]:
    counts = counts[-scales:]
    return (counts[0],) * (scales - len(counts)) + counts


class OptionType(NamedTuple):
    """An option's value type, resolved from its annotation: `kind` of each value, `many` for a tuple of them."""

    kind: type
    many: bool

    def __str__(self) -> str:
        return f"tuple[{self.kind.__name__}, ...]" if self.many else self.kind.__name__


def _resolve_types() -> dict[str, OptionType]:
    types = {}
    for name, hint in typing.get_type_hints(FillOptions).items():
        many = typing.get_origin(hint) is tuple
        kind = typing.get_args(hint)[0] if many else hint
        if kind not in (bool, int, float, str):
            raise TypeError(f"option {name}: values of type {hint} have no parser")
        types[name] = OptionType(kind, many)
    return types


OPTION_TYPES: dict[str, OptionType] = _resolve_types()
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_EXPECTED = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def check_name(name: str) -> str:
    """`name` as an option's name (dashes read as underscores), or an error that suggests the closest one."""
    name = name.strip().replace("-", "_")
    if name not in OPTION_TYPES:
        raise _unknown(name)
    return name


def _unknown(name: str) -> OptionsError:
    close = difflib.get_close_matches(name, OPTION_TYPES, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; the options are {', '.join(OPTION_TYPES)}"
    return OptionsError(f"unknown option '{name}'{hint}")


def parse(name: str, text: str) -> Any:
    """One option's value from text, for the command line and eval method strings alike: true/yes/on/1 and
    false/no/off/0 for switches, lists separated by ',' or '/'. Ranges and choices are FillOptions' to check."""
    option = OPTION_TYPES[check_name(name)]
    parts = re.split(r"[,/]", text) if option.many else [text]
    values = tuple(_parse_one(name, option.kind, part.strip()) for part in parts)
    return values if option.many else values[0]


def _parse_one(name: str, kind: type, text: str) -> Any:
    if kind is bool:
        if text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
    else:
        with contextlib.suppress(ValueError):
            return kind(text)
    raise OptionsError(f"option '{name}' must be {_EXPECTED[kind]}, not {text!r}")


def _check_one(f: dataclasses.Field, v: Any) -> None:
    meta = f.metadata
    kind = OPTION_TYPES[f.name].kind
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    well_typed = {bool: isinstance(v, bool), int: number and isinstance(v, int), float: number,
                  str: isinstance(v, str)}[kind]
    if not well_typed:
        raise OptionsError(f"option '{f.name}' must be {_EXPECTED[kind]}, not {v!r}")
    if kind is float and not math.isfinite(v):  # NaN passes every comparison below; inf overflows the losses
        raise OptionsError(f"option '{f.name}' must be a finite number, not {v!r}")
    if "choices" in meta and v not in meta["choices"]:
        raise OptionsError(f"option '{f.name}' must be one of {', '.join(meta['choices'])}, not {v!r}")
    if "min" in meta and v < meta["min"]:
        raise OptionsError(f"option '{f.name}' must be at least {meta['min']}, not {v!r}")
    if "max" in meta and v > meta["max"]:
        raise OptionsError(f"option '{f.name}' must be at most {meta['max']}, not {v!r}")


PRESETS: dict[str, tuple[str, FillOptions]] = {}


def _preset(name: str, description: str, **values: Any) -> None:
    PRESETS[name] = (description, FillOptions(**values))


_preset("preview", "A quick look in seconds: completion at 256 px (narrow holes three scales at up to 512 px), "
        "fewer rounds of pixel copying.", working_size=256, narrow_size=512, scales=2, iterations=(0, 0),
        vote_iterations=(3, 1), pixel_iterations=2, beside_iterations=1)
_preset("default", "The best quality per second: holes wider than a stroke completed from real pixels, steered by "
        "the content network; strokes copied by pixel patches on three scales.",
        working_size=512, scales=3, iterations=(0, 0, 0), vote_iterations=(3, 2, 1))
_preset("paper", "The reference configuration of Yang et al.'s released code: 3 scales x 100 L-BFGS iterations at "
        "512 px, relu4_1 patches matched at the start of each scale with texture weight 1e-4, no copying of pixels.",
        working_size=512, scales=3, iterations=(100, 100, 100), texture_layers=("relu4_1",), nn_every=0,
        texture_weight=1e-4, candidate_stride=2, vote_iterations=(0,), pixel_iterations=0, beside_iterations=0,
        detail_gain=1.0, completion=False)


def get_preset(name: str, /, **overrides: Any) -> FillOptions:  # `/`: an option `name` is just unknown
    """The named preset, with any fields overridden."""
    try:
        options = PRESETS[name][1]
    except KeyError:
        raise OptionsError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
    return options.replace(**overrides) if overrides else options
