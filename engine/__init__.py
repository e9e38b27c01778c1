"""Neural Fill's engine: multi-scale neural patch synthesis (Yang et al., CVPR 2017) on tensors.

It knows nothing of sockets, GIMP or image files; the daemon and the CLI call `fill`. Torch is imported only when
`fill` is first used, so the options and errors can be read without paying for it (the CLI's --help, the daemon's
protocol checks).
"""

from typing import Any

from .errors import Cancelled, FillError, ImageError, MaskError, OptionsError, WeightsError
from .options import PRESETS, FillOptions, get_preset
from .progress import Progress

__all__ = [
    "Cancelled", "FillError", "FillOptions", "ImageError", "MaskError", "OptionsError", "PRESETS", "Progress",
    "WeightsError", "fill", "get_preset",
]


def __getattr__(name: str) -> Any:
    if name == "fill":
        from .pipeline import fill

        return fill
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
